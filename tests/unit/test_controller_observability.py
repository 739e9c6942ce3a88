"""What the controller tells operators: per-Rollout metrics, process metrics, JSON log lines
naming the object, and Events on the Application as well as on the Rollout."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.kubeapi import APP_PATH, NS, ROLLOUT_PATH, SPEC_APP, FakeApi, flush
from webhook.admission.server import Metrics
from webhook.admission.server.metrics import ServerProcesses
from webhook.cli import build_parser, main
from webhook.controller.logs import about, bound, configure
from webhook.controller.loop import EventFeed, key_fields
from webhook.controller.machine import (
    CONDITION_COMPLETE,
    CONDITION_PROGRESSING,
    Condition,
    Progress,
)
from webhook.controller.metrics import ControllerMetrics, RolloutSeries
from webhook.controller.queue import WorkQueue
from webhook.controller.reconcile import Reconciler
from webhook.controller.views import CONDITION_PERMITTED, failure_reason
from webhook.core.labels import (
    BATCH_IN_ROLLING,
    BATCH_READY,
    ROLLING_IN_BATCHES,
    ROLLOUT_FAILED,
    ROLLOUT_SUCCEED,
)
from webhook.core.logformat import JsonFormatter, TextFormatter
from webhook.kube.client import ROLLOUTS
from webhook.render.renderer import Renderer

Labels = tuple[tuple[str, str], ...]


def samples(exposition: bytes, name: str) -> dict[Labels, float]:
    """Every sample called ``name``, by its sorted labels."""
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(exposition.decode())
            for s in f.samples if s.name == name}


def info(namespace: str, name: str, component: str, rolling: str, batch: str,
         target: str) -> Labels:
    return tuple(sorted({"namespace": namespace, "name": name, "component": component,
                         "rolling_state": rolling, "batch_state": batch,
                         "target_revision": target}.items()))


def by_name(namespace: str, name: str) -> Labels:
    return (("name", name), ("namespace", namespace))


# ---- per-Rollout series -------------------------------------------------------------------

WEB_ROLLING = RolloutSeries("web", ROLLING_IN_BATCHES, BATCH_IN_ROLLING, "web-v2", 1, 3, 2)
WEB_DONE = RolloutSeries("web", ROLLOUT_SUCCEED, BATCH_READY, "web-v2", 2, 5, 5)
API_FAILED = RolloutSeries("api", ROLLOUT_FAILED, BATCH_IN_ROLLING, "api-v2", 0, 3, 0,
                           "ProgressDeadlineExceeded")

SERIES_ROWS = [
    pytest.param(
        [(("a", "web"), WEB_ROLLING)],
        {info("a", "web", "web", ROLLING_IN_BATCHES, BATCH_IN_ROLLING, "web-v2"): 1.0},
        {}, {by_name("a", "web"): (1.0, 3.0, 2.0)},
        id="a rolling Rollout has its info series and its batch, upgraded and ready gauges"),
    pytest.param(
        [(("a", "web"), WEB_ROLLING), (("a", "web"), WEB_DONE)],
        {info("a", "web", "web", ROLLOUT_SUCCEED, BATCH_READY, "web-v2"): 1.0},
        {}, {by_name("a", "web"): (2.0, 5.0, 5.0)},
        id="a new state replaces the old series: no stale one stays behind"),
    pytest.param(
        [(("a", "web"), WEB_ROLLING), (("b", "api"), API_FAILED)],
        {info("a", "web", "web", ROLLING_IN_BATCHES, BATCH_IN_ROLLING, "web-v2"): 1.0,
         info("b", "api", "api", ROLLOUT_FAILED, BATCH_IN_ROLLING, "api-v2"): 1.0},
        {(("component", "api"), ("name", "api"), ("namespace", "b"),
          ("reason", "ProgressDeadlineExceeded")): 1.0},
        {by_name("a", "web"): (1.0, 3.0, 2.0), by_name("b", "api"): (0.0, 3.0, 0.0)},
        id="a failed Rollout also has a failure series with its reason"),
    pytest.param(
        [(("b", "api"), API_FAILED), (("b", "api"), RolloutSeries("api", ROLLING_IN_BATCHES))],
        {info("b", "api", "api", ROLLING_IN_BATCHES, "", ""): 1.0},
        {}, {by_name("b", "api"): (0.0, 0.0, 0.0)},
        id="a failure retried by a new spec leaves no failure series"),
]


@pytest.mark.parametrize(("seen", "infos", "failures", "gauges"), SERIES_ROWS)
def test_each_rollout_has_series_that_follow_its_last_decision(
    seen: list[tuple[tuple[str, str], RolloutSeries]], infos: dict[Labels, float],
    failures: dict[Labels, float], gauges: dict[Labels, tuple[float, float, float]],
) -> None:
    metrics = ControllerMetrics()
    for key, series in seen:
        metrics.rollout_seen(key, series, (), False)
    text = metrics.exposition()
    assert samples(text, "oam_rollout_rollout_info") == infos
    assert samples(text, "oam_rollout_rollout_failure_info") == failures
    batch, upgraded, ready = (samples(text, f"oam_rollout_rollout_{name}")
                              for name in ("current_batch", "upgraded_replicas",
                                           "ready_replicas"))
    assert {k: (batch[k], upgraded[k], ready[k]) for k in batch} == gauges
    assert set(batch) == set(upgraded) == set(ready)


def test_a_rollout_gone_leaves_no_series_of_its_own() -> None:
    metrics = ControllerMetrics()
    metrics.rollout_seen(("a", "web"), WEB_ROLLING, (), False)
    metrics.rollout_seen(("b", "api"), API_FAILED, (), False)
    metrics.rollout_gone(("b", "api"))
    text = metrics.exposition()
    assert [dict(k)["name"] for k in samples(text, "oam_rollout_rollout_info")] == ["web"]
    assert samples(text, "oam_rollout_rollout_failure_info") == {}
    assert list(samples(text, "oam_rollout_rollout_ready_replicas")) == [by_name("a", "web")]


def test_a_listing_of_the_rollouts_drops_those_deleted_while_no_watch_saw_it() -> None:
    metrics = ControllerMetrics()
    feed = EventFeed(ROLLOUTS, WorkQueue(), on_listed=metrics.rollouts_listed)
    metrics.rollout_seen(("a", "web"), WEB_ROLLING, (), False)
    metrics.rollout_seen(("b", "api"), API_FAILED, (), False)
    feed.listed([{"metadata": {"namespace": "a", "name": "web"}}])
    assert list(metrics.rollouts()) == [("a", "web")]


@pytest.mark.parametrize("exposition", [
    pytest.param(lambda: ControllerMetrics().exposition(), id="the controller"),
    pytest.param(lambda: Metrics().exposition(), id="the webhook in one process"),
])
def test_process_metrics_are_shown_and_no_created_samples(exposition: Any) -> None:
    names = {s.name for f in text_string_to_metric_families(exposition().decode())
             for s in f.samples}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes",
            "process_open_fds", "process_start_time_seconds"} <= names
    assert [n for n in names if n.endswith("_created")] == []


def test_the_webhook_workers_each_show_their_process_metrics_by_pid(tmp_path: Path) -> None:
    dead = 2**22 + 1  # above Linux's highest pid: never a live process
    for name in (f"counter_{os.getpid()}.db", f"histogram_{dead}.db", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    collector = ServerProcesses(str(tmp_path))
    by_family = {f.name: f for f in collector.collect()}
    rss = by_family["process_resident_memory_bytes"].samples
    assert collector.pids() == [os.getpid()]
    assert [s.labels for s in rss] == [{"pid": str(os.getpid())}]
    assert rss[0].value > 0


# ---- failure reasons ----------------------------------------------------------------------

DEADLINE = Condition(CONDITION_PROGRESSING, "False", "ProgressDeadlineExceeded", "batch 0 ...")
INCOMPLETE = Condition(CONDITION_COMPLETE, "False", "RolloutFailed", "")
REFUSED = Condition(CONDITION_PERMITTED, "False", "Forbidden", "may not patch")


@pytest.mark.parametrize(("progress", "reason"), [
    pytest.param(Progress(ROLLOUT_FAILED, conditions=(INCOMPLETE, DEADLINE)),
                 "ProgressDeadlineExceeded", id="the condition that failed it names it"),
    pytest.param(Progress(ROLLOUT_FAILED, conditions=(INCOMPLETE,)), "RolloutFailed",
                 id="a run failed with no other condition"),
    pytest.param(Progress(ROLLING_IN_BATCHES, conditions=(INCOMPLETE,)), "",
                 id="an unfinished run has not failed"),
    pytest.param(Progress(ROLLING_IN_BATCHES, conditions=(REFUSED,)), "",
                 id="a refused write is reported by who saw it, not read back from status"),
])
def test_a_decided_run_names_why_it_failed(progress: Progress, reason: str) -> None:
    assert failure_reason(progress) == reason


# ---- the reconciler feeds metrics and Events --------------------------------------------


def observed_reconciler(api: FakeApi) -> tuple[Reconciler, ControllerMetrics]:
    metrics = ControllerMetrics()
    rec = Reconciler(api, Renderer(), now=lambda: "2026-11-26T00:00:00Z",  # type: ignore[arg-type]
                     metrics=metrics)
    return rec, metrics


def test_a_reconciled_rollout_shows_in_metrics_until_it_is_deleted() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec, metrics = observed_reconciler(api)
    rec.application(NS, "rollout-trait-test")
    rec.rollout(NS, "express-server")
    shown = samples(metrics.exposition(), "oam_rollout_rollout_info")
    del api.objects[ROLLOUT_PATH]
    rec.rollout(NS, "express-server")
    flush(rec)
    assert shown == {info(NS, "express-server", "express-server", "initializing",
                          "batchInitializing", "express-server-v1"): 1.0}
    assert samples(metrics.exposition(), "oam_rollout_rollout_info") == {}


def test_every_rollout_event_is_also_on_its_application_naming_the_component() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec, _ = observed_reconciler(api)
    rec.application(NS, "rollout-trait-test")
    api.writes.clear()
    rec.rollout(NS, "express-server")
    flush(rec)
    events = [body for method, path, body in api.writes if path.endswith("/events")]
    on_rollout = [(e["type"], e["reason"], e["message"]) for e in events
                  if e["involvedObject"]["kind"] == "Rollout"]
    on_app = [e for e in events if e["involvedObject"]["kind"] == "Application"]
    assert [(e["type"], e["reason"], e["message"]) for e in on_app] == [
        (type_, reason, f"component express-server: {message}")
        for type_, reason, message in on_rollout]
    assert {(e["involvedObject"]["apiVersion"], e["involvedObject"]["name"],
             e["involvedObject"]["namespace"], e["involvedObject"]["uid"])
            for e in on_app} == {("core.oam.dev/v1beta1", "rollout-trait-test", NS, "app-uid")}
    assert on_rollout  # a first deploy says what it does


# ---- log lines ------------------------------------------------------------------------------


def record(msg: object, context: dict[str, str] | None = None,
           exc: bool = False) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "oam_rollout.controller", "msg": msg,
                                 "levelname": "INFO", "levelno": logging.INFO})
    if context is not None:
        rec.context = context
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            rec.exc_info = sys.exc_info()
    return rec


JSON_ROWS = [
    pytest.param(record("rollout a/web: next-batch", {"namespace": "a", "app": "shop",
                                                     "component": "web"}),
                 {"level": "info", "msg": "rollout a/web: next-batch", "namespace": "a",
                  "app": "shop", "component": "web", "logger": "oam_rollout.controller"},
                 id="a line about one object names it"),
    pytest.param(record("leading as r1"), {"level": "info", "msg": "leading as r1",
                                           "logger": "oam_rollout.controller"},
                 id="a line about nothing in particular names nothing"),
    pytest.param(record({"webhook": "validate", "uid": "u-1"}),
                 {"webhook": "validate", "uid": "u-1", "logger": "oam_rollout.controller"},
                 id="a dict message is the line itself (the webhook's review lines)"),
]


@pytest.mark.parametrize(("rec", "expected"), JSON_ROWS)
def test_a_json_line_is_one_object_with_the_context_fields(
    rec: logging.LogRecord, expected: dict[str, Any],
) -> None:
    line = JsonFormatter().format(rec)
    entry = json.loads(line)
    assert "\n" not in line
    assert {k: v for k, v in entry.items() if k != "ts"} == expected


def test_a_traceback_stays_inside_its_json_line() -> None:
    line = JsonFormatter().format(record("failed", {"app": "shop"}, exc=True))
    entry = json.loads(line)
    assert "\n" not in line
    assert (entry["app"], entry["traceback"].splitlines()[-1]) == ("shop", "ValueError: boom")


def test_a_text_line_carries_the_context_after_the_message() -> None:
    line = TextFormatter().format(record("created", {"namespace": "a", "app": "shop"}))
    assert line.split(" ", 2)[2] == "INFO oam_rollout.controller created namespace=a app=shop"


def test_nested_contexts_add_fields_and_end_with_their_block() -> None:
    seen = []
    with about(namespace="a", app="shop"):
        with about(component="web", app=""):  # an empty field keeps the outer one
            seen.append(dict(bound()))
        seen.append(dict(bound()))
    seen.append(dict(bound()))
    assert seen == [{"namespace": "a", "app": "shop", "component": "web"},
                    {"namespace": "a", "app": "shop"}, {}]


def test_a_context_belongs_to_its_thread() -> None:
    other: list[dict[str, str]] = []
    with about(namespace="a"):
        thread = threading.Thread(target=lambda: other.append(dict(bound())))
        thread.start()
        thread.join(5)
    assert other == [{}]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure() replaces the root handlers and hooks: put them back afterwards."""
    root = logging.getLogger()
    ours = logging.getLogger("oam_rollout")
    saved = (list(root.handlers), root.level, ours.level, sys.excepthook, threading.excepthook)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        ours.setLevel(saved[2])
        sys.excepthook, threading.excepthook = saved[3], saved[4]
        logging.captureWarnings(False)


def test_configured_logging_writes_every_line_as_json_with_its_context(
    root_logging: None,
) -> None:
    stream = io.StringIO()
    configure("json", "info", stream)
    with about(**key_fields(("rollout", "a", "web"))), about(app="shop"):
        logging.getLogger("oam_rollout.controller").info("rollout %s: %s", "a/web", "done")
        logging.getLogger("oam_rollout.controller").debug("not at info")
        logging.getLogger("urllib3.connectionpool").info("not below warning")
        logging.getLogger("urllib3.connectionpool").warning("retrying")
    logging.getLogger("oam_rollout.kube").warning("watch ended")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [{k: v for k, v in e.items() if k != "ts"} for e in lines] == [
        {"level": "info", "msg": "rollout a/web: done", "logger": "oam_rollout.controller",
         "namespace": "a", "component": "web", "app": "shop"},
        {"level": "warning", "msg": "retrying", "logger": "urllib3.connectionpool",
         "namespace": "a", "component": "web", "app": "shop"},
        {"level": "warning", "msg": "watch ended", "logger": "oam_rollout.kube"},
    ]


def test_an_uncaught_exception_in_a_thread_is_a_json_line_too(root_logging: None) -> None:
    stream = io.StringIO()
    configure("json", "info", stream)

    def fail() -> None:
        raise RuntimeError("lost")

    thread = threading.Thread(target=fail, name="worker-9")
    thread.start()
    thread.join(5)
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (entry["level"], entry["msg"], entry["traceback"].splitlines()[-1]) == (
        "critical", "uncaught exception in thread worker-9", "RuntimeError: lost")


def test_the_log_options_default_to_json_at_info() -> None:
    defaults = build_parser().parse_args(["controller"])
    chosen = build_parser().parse_args(["controller", "--log-format", "text",
                                        "--log-level", "debug"])
    assert (defaults.log_format, defaults.log_level, chosen.log_format, chosen.log_level) == (
        "json", "info", "text", "debug")


@pytest.mark.parametrize("argv", [
    pytest.param(["--log-format", "yaml"], id="an unknown format"),
    pytest.param(["--log-level", "trace"], id="an unknown level"),
])
def test_an_unknown_log_option_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["controller", *argv])
    assert (exited.value.code, "invalid choice" in capsys.readouterr().err) == (2, True)


@pytest.mark.parametrize(("key", "fields"), [
    (("app", "a", "shop"), {"namespace": "a", "app": "shop"}),
    (("rollout", "a", "web"), {"namespace": "a", "component": "web"}),
])
def test_a_work_key_names_what_its_lines_are_about(
    key: tuple[str, str, str], fields: dict[str, str],
) -> None:
    assert key_fields(key) == fields
