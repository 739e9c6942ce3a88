"""The HTTP shell: status codes for bad bodies, denials for our failures, logs, metrics, probes."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.apps import application
from tests.fixtures.webhook import StubRenderer, admission_review
from webhook.admission.server import (
    MAX_BODY_BYTES,
    JsonFormatter,
    Metrics,
    ReviewLineHandler,
    create_app,
)
from webhook.core.errors import ApiError, OamRolloutError
from webhook.core.state import ObservedState


def empty_state(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
    return ObservedState(namespace=namespace)


def make_app(
    read_state: Any = empty_state, renderer: Any = None, ready: Any = None
) -> tuple[Flask, Metrics]:
    metrics = Metrics()
    app = create_app(read_state, renderer or StubRenderer(), metrics=metrics, ready=ready)
    return app, metrics


@pytest.fixture
def client() -> FlaskClient:
    return make_app()[0].test_client()


def post(client: FlaskClient, path: str, body: Any, content_type: str = "application/json") -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, content_type=content_type)


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
@pytest.mark.parametrize(
    ("content_type", "body", "status", "says"),
    [
        ("text/plain", json.dumps(admission_review(application())).encode(), 415, "Content-Type"),
        ("", json.dumps(admission_review(application())).encode(), 415, "Content-Type"),
        ("application/json", b"{not json", 400, "not valid JSON"),
        ("application/json", b"\xff\xfe", 400, "not valid JSON"),
        ("application/json", b"[1, 2]", 400, "not a JSON object"),
        ("application/json", b'{"kind": "Pod"}', 400, "kind must be AdmissionReview"),
        ("application/json", b"[" * 100_000, 400, "not valid JSON"),
        (
            "application/json",
            json.dumps(admission_review(None)).encode(),
            400,
            "request.object is required",
        ),
    ],
    ids=["text", "none", "broken", "not-utf8", "array", "pod", "deep", "no-object"],
)
def test_bad_bodies_get_a_plain_http_error_with_a_reason(
    client: FlaskClient, path: str, content_type: str, body: bytes, status: int, says: str
) -> None:
    response = client.post(path, data=body, content_type=content_type)
    assert response.status_code == status
    assert says in response.get_json()["error"]


def test_a_charset_parameter_is_still_json(client: FlaskClient) -> None:
    response = post(
        client, "/validate", admission_review(application()), "application/json; charset=utf-8"
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_bodies_over_seven_mib_are_refused_with_413(client: FlaskClient, path: str) -> None:
    response = post(client, path, b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413


def test_a_body_just_under_the_limit_is_read(client: FlaskClient) -> None:
    body = json.dumps(admission_review(application())).encode()
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    assert post(client, "/validate", padded).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("get", "/validate"), ("post", "/healthz")])
def test_wrong_methods_get_405(client: FlaskClient, method: str, path: str) -> None:
    assert getattr(client, method)(path).status_code == 405


def test_an_invalid_application_is_http_200_with_a_422_denial(client: FlaskClient) -> None:
    app = application(rollout={"targetSize": 5, "rolloutBatches": [{"replicas": 4}]})
    response = post(client, "/validate", admission_review(app))
    assert response.status_code == 200
    review = response.get_json()["response"]
    assert review["allowed"] is False
    assert review["status"]["code"] == 422
    assert review["status"]["reason"] == "Invalid"


def test_the_mutating_endpoint_patches(client: FlaskClient) -> None:
    review = post(client, "/mutate", admission_review(application())).get_json()["response"]
    assert (review["allowed"], review["patchType"]) == (True, "JSONPatch")


def boom(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
    raise ZeroDivisionError("secret internals")


def ours(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
    raise OamRolloutError("template registry is empty")


@pytest.mark.parametrize(
    ("reader", "says"),
    [(boom, "internal error (incident "), (ours, "template registry is empty")],
    ids=["bug", "ours"],
)
def test_our_failures_deny_with_500_and_keep_the_traceback_in_the_log(
    reader: Any, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(read_state=reader)[0].test_client()
    logging.getLogger("oam_rollout.webhook").addHandler(caplog.handler)
    try:
        response = post(client, "/validate", admission_review(application()))
    finally:
        logging.getLogger("oam_rollout.webhook").removeHandler(caplog.handler)
    assert response.status_code == 200
    review = response.get_json()["response"]
    assert (review["allowed"], review["status"]["code"]) == (False, 500)
    assert says in review["status"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert "secret internals" not in response.get_data(as_text=True)
    assert any(record.exc_info for record in caplog.records)


def test_an_unreachable_cluster_is_a_500_denial_and_is_counted() -> None:
    def unreachable(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        raise ApiError("GET", "/apis/apps/v1/...", 0, "ConnectionRefusedError")

    app, metrics = make_app(read_state=unreachable)
    review = post(app.test_client(), "/validate", admission_review(application())).get_json()
    assert review["response"]["status"]["code"] == 500
    assert metrics.registry.get_sample_value("oam_rollout_cluster_read_errors_total") == 1.0


def test_each_review_is_logged_as_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("oam_rollout.reviews")
    client = make_app()[0].test_client()
    logger.addHandler(caplog.handler)
    try:
        post(client, "/validate", admission_review(application(), dry_run=True, uid="uid-7"))
    finally:
        logger.removeHandler(caplog.handler)
    (record,) = [r for r in caplog.records if r.name == "oam_rollout.reviews"]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert {k: entry[k] for k in ("webhook", "uid", "kind", "object", "operation", "dryRun")} == {
        "webhook": "validate",
        "uid": "uid-7",
        "kind": "Application",
        "object": "default/rollout-trait-test",
        "operation": "CREATE",
        "dryRun": True,
    }
    assert (entry["allowed"], entry["code"], entry["patched"]) == (True, 200, False)
    assert entry["durationMs"] >= 0


def test_metrics_count_reviews_by_webhook_and_verdict() -> None:
    app, _ = make_app()
    client = app.test_client()
    post(client, "/validate", admission_review(application()))
    bad = application(rollout={"targetSize": 5, "rolloutBatches": [{"replicas": 4}]})
    post(client, "/validate", admission_review(bad))
    post(client, "/mutate", admission_review(application()))
    post(client, "/mutate", b"nope")
    text = client.get("/metrics").get_data(as_text=True)
    for line in (
        'oam_rollout_admission_reviews_total{allowed="true",code="200",operation="CREATE",'
        'webhook="validate"} 1.0',
        'oam_rollout_admission_reviews_total{allowed="false",code="422",operation="CREATE",'
        'webhook="validate"} 1.0',
        'oam_rollout_admission_reviews_total{allowed="true",code="200",operation="CREATE",'
        'webhook="mutate"} 1.0',
        'oam_rollout_http_rejections_total{code="400"} 1.0',
        'oam_rollout_admission_duration_seconds_count{webhook="validate"} 2.0',
    ):
        assert line in text


def test_healthz_answers_while_the_process_lives(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("checks", "status"),
    [({"templates": True, "tls": True}, 200), ({"templates": True, "tls": False}, 503)],
)
def test_readyz_is_ready_only_when_every_check_passes(checks: dict[str, bool], status: int) -> None:
    client = make_app(ready=lambda: checks)[0].test_client()
    response = client.get("/readyz")
    assert response.status_code == status
    assert response.get_json() == {"ready": status == 200, "checks": checks}


VALID_BODY = json.dumps(admission_review(application())).encode()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def mangled_reviews() -> st.SearchStrategy[bytes]:
    """AdmissionReviews with one field of the request (or of the Application) replaced."""
    keys = ["uid", "operation", "object", "oldObject", "kind", "namespace", "name", "dryRun"]

    def build(key: str, value: Any, deep: bool) -> bytes:
        body = admission_review(application())
        if deep:
            body["request"]["object"]["spec"]["components"][0][key[:5]] = value
        else:
            body["request"][key] = value
        return json.dumps(body).encode()

    return st.builds(build, st.sampled_from(keys), json_values, st.booleans())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.integers(min_value=0, max_value=len(VALID_BODY)).map(lambda n: VALID_BODY[:n]),
        json_values.map(lambda v: json.dumps(v).encode()),
        mangled_reviews(),
    ),
    path=st.sampled_from(["/validate", "/mutate"]),
)
def test_random_and_truncated_bodies_never_get_a_5xx(
    client: FlaskClient, body: bytes, path: str
) -> None:
    response = post(client, path, body)
    assert response.status_code < 500
    assert client.get("/healthz").status_code == 200


def call_wsgi(app: Flask, path: str, body: bytes, headers: dict[str, str]) -> tuple[str, bytes]:
    """Call the WSGI app directly, as gunicorn does (no test client in between)."""
    import io

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "9443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": io.StringIO(),
        **headers,
    }
    statuses: list[str] = []
    out = b"".join(app(environ, lambda status, _headers, _exc=None: statuses.append(status)))
    return statuses[0], out


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
@pytest.mark.parametrize(
    "body",
    [
        json.dumps(admission_review(application(), uid="same")).encode(),
        json.dumps(admission_review(application(rollout={"targetSize": 3}), uid="same")).encode(),
        b"{not json",
        b'{"kind": "Pod"}',
    ],
    ids=["valid", "invalid", "broken", "pod"],
)
def test_a_body_without_content_length_gets_the_same_answer_as_with_one(
    path: str, body: bytes
) -> None:
    app, _ = make_app()
    sized = call_wsgi(
        app,
        path,
        body,
        {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))},
    )
    # Chunked uploads carry no Content-Length; they take the Flask route.
    chunked = call_wsgi(app, path, body, {"CONTENT_TYPE": "application/json; charset=utf-8"})
    assert (sized[0], json.loads(sized[1])) == (chunked[0], json.loads(chunked[1]))


def test_a_body_shorter_than_its_content_length_is_refused_with_400() -> None:
    app, metrics = make_app()
    body = json.dumps(admission_review(application())).encode()
    status, out = call_wsgi(
        app,
        "/validate",
        body[:100],
        {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))},
    )
    assert (status, json.loads(out)["code"]) == ("400 BAD REQUEST", 400)
    sample = metrics.registry.get_sample_value
    assert sample("oam_rollout_http_rejections_total", {"code": "400"}) == 1


@pytest.mark.parametrize(
    ("method", "path", "headers", "to_flask"),
    [
        ("POST", "/validate", {"CONTENT_TYPE": "application/json"}, False),
        ("POST", "/mutate", {"CONTENT_TYPE": "application/json; charset=utf-8"}, False),
        ("POST", "/validate", {"CONTENT_TYPE": "text/plain"}, True),
        ("POST", "/healthz", {"CONTENT_TYPE": "application/json"}, True),
        ("GET", "/validate", {"CONTENT_TYPE": "application/json"}, True),
        ("POST", "/validate", {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": ""}, True),
        (
            "POST",
            "/validate",
            {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(MAX_BODY_BYTES + 1)},
            True,
        ),
    ],
    ids=["validate", "mutate", "text", "other-route", "get", "chunked", "oversized"],
)
def test_only_plain_admission_posts_skip_flask(
    method: str, path: str, headers: dict[str, str], to_flask: bool
) -> None:
    import io

    from webhook.admission.server.fastpath import FastPath
    from webhook.admission.server.handler import ReviewHandler

    reached: list[str] = []

    def flask_stand_in(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        reached.append(environ["PATH_INFO"])
        start_response("204 NO CONTENT", [])
        return [b""]

    body = json.dumps(admission_review(application())).encode()
    app = FastPath(flask_stand_in, ReviewHandler(empty_state, StubRenderer(), Metrics()))
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body)}
    environ.update({"CONTENT_LENGTH": str(len(body)), **headers})
    statuses: list[str] = []
    out = b"".join(app(environ, lambda status, _headers, _exc=None: statuses.append(status)))
    assert reached == ([path] if to_flask else [])
    if not to_flask:
        assert (statuses, json.loads(out)["response"]["allowed"]) == (["200 OK"], True)


def test_the_direct_review_line_is_the_line_the_formatter_prints() -> None:
    import io

    entry = {"webhook": "mutate", "uid": "u-1", "allowed": True, "durationMs": 0.2}
    stream = io.StringIO()
    ReviewLineHandler(stream).write_entry(logging.getLogger("oam_rollout.reviews"), dict(entry))
    direct = stream.getvalue()
    record = logging.makeLogRecord({"name": "oam_rollout.reviews", "msg": dict(entry)})
    formatted = json.loads(JsonFormatter().format(record))
    assert direct.endswith("\n") and direct.count("\n") == 1
    written = json.loads(direct)
    assert list(written) == list(formatted)
    assert {k: v for k, v in written.items() if k != "ts"} == {
        k: v for k, v in formatted.items() if k != "ts"
    }
    assert abs(written["ts"] - formatted["ts"]) < 5


def test_reviews_are_logged_to_stderr_as_json_lines(capfd: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("oam_rollout.reviews")
    saved = logger.handlers[:]
    for handler in saved:
        logger.removeHandler(handler)
    try:
        client = make_app()[0].test_client()
        post(client, "/mutate", admission_review(application(), uid="uid-9"))
    finally:
        for handler in logger.handlers[:]:
            logger.removeHandler(handler)
        for handler in saved:
            logger.addHandler(handler)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"uid"' in line]
    assert [(e["webhook"], e["uid"], e["logger"]) for e in lines] == [
        ("mutate", "uid-9", "oam_rollout.reviews")
    ]


@pytest.mark.parametrize(
    ("argv", "size"),
    [([], 256), (["--render-cache", "0"], 0), (["--render-cache", "1000"], 1000)],
)
def test_the_render_memo_size_is_a_flag_of_the_webhook_command(argv: list[str], size: int) -> None:
    from webhook.cli import build_parser

    args = build_parser().parse_args(["webhook", "--tls-cert", "c", "--tls-key", "k", *argv])
    assert args.render_cache == size


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_bad_render_memo_size_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from webhook.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(
            ["webhook", "--tls-cert", "c", "--tls-key", "k", "--render-cache", value]
        )
    assert exited.value.code == 2
    assert "--render-cache" in capsys.readouterr().err
