# oam-rollout: one image for both components. The chart runs it as
#   oam-rollout webhook --tls-cert /tls/tls.crt --tls-key /tls/tls.key --bind 0.0.0.0 --port 9443 ...
#   oam-rollout controller --leader-elect ...
# (tests/chart/test_container_args.py checks that those arguments parse with the CLI.)

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
COPY templates ./templates
COPY charts ./charts
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 oam-rollout \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin oam-rollout
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Numeric, so that Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 9443
ENTRYPOINT ["oam-rollout"]
CMD ["--help"]
