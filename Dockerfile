# oam-rollout: one image for both components. The chart runs it as
#   oam-rollout webhook --tls-cert /tls/tls.crt --tls-key /tls/tls.key --bind 0.0.0.0 --port 9443 ...
#   oam-rollout controller --leader-elect ...
# (tests/chart/test_container_args.py checks that those arguments parse with the CLI.)
#
#   docker build -t oam-rollout .                       # python:3.11-slim, packages from PyPI
#   scripts/build-image.sh                              # podman, a local Debian base, a wheelhouse
#
# BASE_IMAGE is any image with python3 >= 3.11 and its venv module (Debian's python3 +
# python3-venv will do); the project goes into a venv, so the base needs no pip of its own.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# pip reads these from the environment. Unset, it installs from PyPI; scripts/build-image.sh
# sets them to a wheelhouse it mounts into the build (PIP_NO_INDEX=1, PIP_FIND_LINKS=/wheelhouse)
# so the build needs no network.
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
# The dependencies get a layer of their own: a change of the sources alone reuses it.
RUN python3 -m venv /opt/oam-rollout \
 && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && /opt/oam-rollout/bin/python -m pip install -r /tmp/requirements.txt \
 && cp -a /opt/oam-rollout /opt/dependencies
COPY README.md ./
COPY webhook ./webhook
COPY templates ./templates
COPY charts ./charts
# The project's own files, gathered under /opt/project at their final paths, make the
# image's last layer: small, so shipping a new build of the sources moves little.
RUN /opt/oam-rollout/bin/python -m pip install --no-deps . \
 && /opt/oam-rollout/bin/oam-rollout --help >/dev/null \
 && site=$(/opt/oam-rollout/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && mkdir -p "/opt/project$site" /opt/project/opt/oam-rollout/bin \
 && cp -a "$site/webhook" "$site"/oam_rollout-*.dist-info "/opt/project$site/" \
 && cp -a /opt/oam-rollout/bin/oam-rollout /opt/project/opt/oam-rollout/bin/

FROM ${BASE_IMAGE}
ENV PATH=/opt/oam-rollout/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 oam-rollout \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin oam-rollout
# The venv's python links to the base's python3, the same path in both stages.
COPY --from=build /opt/dependencies /opt/oam-rollout
COPY --from=build /opt/project/ /
# Numeric, so that Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 9443
ENTRYPOINT ["oam-rollout"]
CMD ["--help"]
