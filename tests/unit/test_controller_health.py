"""The controller's probes and metrics: the pure probe rules, the HTTP endpoint on
loopback, the Prometheus families, the queue's deadline wake-ups and the new options."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.watching import RecordingStop, ScriptedApi
from webhook.cli import build_parser, main
from webhook.controller.health import (
    HealthFacts,
    HealthServer,
    answer,
    live_problems,
    ready_problems,
)
from webhook.controller.loop import EventFeed, watch_kind
from webhook.controller.metrics import ControllerMetrics, RolloutSeries
from webhook.controller.queue import WorkQueue
from webhook.core.labels import ROLLING_IN_BATCHES, ROLLOUT_FAILED, ROLLOUT_SUCCEED
from webhook.kube.client import CLONESETS

LIVE_ROWS = [
    pytest.param(HealthFacts(100.0, "leader"), [], id="an idle leader is alive"),
    pytest.param(HealthFacts(100.0, "leader", busy={"worker-0": ("rollout ns/web", 90.0)}), [],
                 id="a worker busy for seconds is alive"),
    pytest.param(HealthFacts(500.0, "leader", busy={"worker-1": ("rollout ns/web", 100.0)}),
                 ["worker-1 has been reconciling rollout ns/web for 400s"],
                 id="a worker stuck on one key is a wedge"),
    pytest.param(HealthFacts(100.0, "leader", dead_threads=("watch-rollouts",)),
                 ["thread watch-rollouts has died"], id="a dead watch thread is a wedge"),
    pytest.param(HealthFacts(100.0, "follower", lease_tried=95.0, lease_patience=57.0), [],
                 id="a follower trying the lease is alive"),
    pytest.param(HealthFacts(200.0, "follower", lease_tried=100.0, lease_patience=57.0),
                 ["no lease attempt for 100s"], id="a follower that stopped trying is a wedge"),
]


@pytest.mark.parametrize(("facts", "problems"), LIVE_ROWS)
def test_liveness_fails_only_when_the_loop_is_wedged(
    facts: HealthFacts, problems: list[str]
) -> None:
    assert live_problems(facts) == problems


READY_ROWS = [
    pytest.param(HealthFacts(1.0, "starting"), ["controller is starting"],
                 id="a starting process is not ready"),
    pytest.param(HealthFacts(1.0, "follower", unsynced_watches=("rollouts",)), [],
                 id="a follower waiting for the lease is a ready stand-by"),
    pytest.param(HealthFacts(1.0, "leader", unsynced_watches=("rollouts", "deployments")),
                 ["watch rollouts not synced yet", "watch deployments not synced yet"],
                 id="a leader is not ready before its watches synced"),
    pytest.param(HealthFacts(1.0, "leader"), [], id="a synced leader is ready"),
    pytest.param(HealthFacts(1.0, "stopping"), ["controller is stopping"],
                 id="a stopping process takes itself out"),
]


@pytest.mark.parametrize(("facts", "problems"), READY_ROWS)
def test_readiness_needs_synced_watches_or_a_follower_role(
    facts: HealthFacts, problems: list[str]
) -> None:
    assert ready_problems(facts) == problems


@pytest.mark.parametrize(
    ("path", "facts", "status", "body"),
    [
        ("/healthz", HealthFacts(1.0, "leader"), 200, b"ok (leader)\n"),
        ("/readyz?verbose", HealthFacts(1.0, "starting"), 503, b"controller is starting\n"),
        ("/readyz", HealthFacts(1.0, "follower"), 200, b"ok (follower)\n"),
        ("/nope", HealthFacts(1.0, "leader"), 404,
         b"not found: try /healthz, /readyz or /metrics\n"),
    ],
    ids=["healthz", "readyz starting", "readyz follower", "unknown path"],
)
def test_each_path_answers_with_a_status_and_a_reason(
    path: str, facts: HealthFacts, status: int, body: bytes
) -> None:
    got = answer(path, lambda: facts, None)
    assert (got[0], got[1]) == (status, body)


@pytest.fixture
def server() -> Iterator[tuple[HealthServer, ControllerMetrics, list[HealthFacts]]]:
    facts = [HealthFacts(1.0, "starting")]
    metrics = ControllerMetrics()
    srv = HealthServer("127.0.0.1", 0, lambda: facts[-1], metrics.exposition)
    srv.start()
    try:
        yield srv, metrics, facts
    finally:
        srv.stop()


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_endpoint_serves_probes_and_metrics_over_http_on_loopback(
    server: tuple[HealthServer, ControllerMetrics, list[HealthFacts]],
) -> None:
    srv, metrics, facts = server
    assert fetch(srv.port, "/readyz") == (503, "controller is starting\n")
    facts.append(HealthFacts(2.0, "leader"))
    assert fetch(srv.port, "/readyz") == (200, "ok (leader)\n")
    metrics.set_leader(True)
    status, text = fetch(srv.port, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert status == 200
    assert families["oam_rollout_controller_leader"].samples[0].value == 1.0


def samples(metrics: ControllerMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = metrics.exposition().decode()
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


def test_the_metrics_count_reconciles_states_queue_depth_and_hand_offs() -> None:
    clock = iter([10.0, 10.4, 20.0, 21.0]).__next__
    metrics = ControllerMetrics(clock=clock)
    metrics.observe_reconcile("rollout", "success", 0.02)
    metrics.observe_reconcile("rollout", "conflict", 0.01)
    metrics.observe_reconcile("app", "success", 0.03)
    metrics.watch_queue(lambda: 7)
    metrics.rollout_seen(("ns", "a"), RolloutSeries("a", ROLLING_IN_BATCHES),
                         ("shrink-others",), True)
    metrics.rollout_seen(("ns", "a"), RolloutSeries("a", ROLLING_IN_BATCHES),
                         ("batch-verified", "batch-ready", "next-batch", "batch-rolling",
                          "change-target"), True)
    metrics.rollout_seen(("ns", "b"), RolloutSeries("b", ROLLOUT_SUCCEED), (), False)
    metrics.rollout_seen(("ns", "c"), RolloutSeries("c", ROLLOUT_FAILED),
                         ("progress-deadline",), False)
    reconciles = samples(metrics, "oam_rollout_controller_reconcile_total")
    assert {k: v for k, v in reconciles.items() if v} == {
        (("kind", "rollout"), ("result", "success")): 1.0,
        (("kind", "rollout"), ("result", "conflict")): 1.0,
        (("kind", "app"), ("result", "success")): 1.0,
    }
    assert samples(metrics, "oam_rollout_controller_workqueue_depth") == {(): 7.0}
    states = samples(metrics, "oam_rollout_controller_rollouts")
    assert {k[0][1]: v for k, v in states.items() if v} == {
        ROLLING_IN_BATCHES: 1.0, ROLLOUT_SUCCEED: 1.0, ROLLOUT_FAILED: 1.0}
    handoff = samples(metrics, "oam_rollout_controller_batch_handoff_seconds_sum")
    assert handoff == {(): pytest.approx(0.4)}
    durations = samples(metrics, "oam_rollout_controller_reconcile_duration_seconds_count")
    assert durations == {(("kind", "rollout"),): 2.0, (("kind", "app"),): 1.0}


def test_a_deleted_rollout_leaves_the_state_gauge() -> None:
    metrics = ControllerMetrics()
    metrics.rollout_seen(("ns", "a"), RolloutSeries("a", ROLLING_IN_BATCHES), (), False)
    metrics.rollout_gone(("ns", "a"))
    assert metrics.state_counts() == {}


def test_a_deadline_wake_up_reconciles_the_key_once_when_it_falls_due() -> None:
    queue = WorkQueue()
    key = ("rollout", "ns", "web")
    for _ in range(50):  # every reconcile of a waiting batch asks for the same moment
        queue.wake_after(key, 0.05)
    assert queue.pending_delays() == 1  # the 49 duplicates were never queued
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    worker.join(5)
    assert got == [key]
    queue.done(key)
    assert (len(queue), queue.pending_delays()) == (0, 0)


def test_a_watch_of_a_kind_that_is_not_installed_does_not_hold_readiness() -> None:
    api = ScriptedApi({CLONESETS.path(): []})
    api.missing.add(CLONESETS.path())
    stop = RecordingStop(limit=1)
    watcher = watch_kind(api, CLONESETS, EventFeed(CLONESETS, WorkQueue()), None, stop)
    watcher.run()
    assert (watcher.synced.is_set(), stop.waits) == (True, [30.0])


def test_the_new_controller_options_parse_with_their_defaults() -> None:
    defaults = build_parser().parse_args(["controller"])
    tuned = build_parser().parse_args(["controller", "--progress-deadline", "0",
                                       "--health-bind", "0.0.0.0", "--health-port", "0"])
    assert (defaults.progress_deadline, defaults.health_bind, defaults.health_port) == (
        600, "127.0.0.1", 8080)
    assert (tuned.progress_deadline, tuned.health_bind, tuned.health_port) == (0, "0.0.0.0", 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--progress-deadline", "-1"], "--progress-deadline must be >= 0 (0 waits forever)"),
        (["--health-port", "70000"], "--health-port must be between 0 (off) and 65535"),
    ],
    ids=["negative deadline", "port out of range"],
)
def test_bad_deadline_and_port_are_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["controller", *argv]) == 2
    assert capsys.readouterr().err == f"oam-rollout controller: {message}\n"
