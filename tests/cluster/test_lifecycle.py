"""An Application's objects through the changes of a platform team's first week, on the
local control plane with the webhook and the controller running.

Each case failed before: the rollout trait removed (the component must keep serving on
one Deployment, never at zero Ready pods, without flapping), a component removed (all of
it goes, the others stay), the component type changed both ways (no orphan), two
Applications using one component name with admission bypassed (the second reports the
conflict, nothing flips), a workload the API refuses (the rollout fails loudly once) and
the revision history (at most 10 kept; a rollback to any kept one works), and a rollback
to a revision kept from before a type change (refused; past admission, failed loudly
without touching what serves). Admission is
bypassed where it would have refused the change (tests.fixtures.cluster.bypassed_namespace).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.apps import V1_IMAGE, V2_IMAGE, application, application_of, manifest, plan
from tests.fixtures.cluster import ToolFailed
from tests.fixtures.controller import ControllerProcess, ReadySampler
from tests.fixtures.polling import eventually
from tests.fixtures.views import rollout_state
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

def get(kubectl: Any, namespace: str, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-n", namespace, "-o", "json").stdout)


def apply(kubectl: Any, namespace: str, *apps: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(*apps))


def workloads(kubectl: Any, namespace: str, component: str = "api") -> list[tuple[str, ...]]:
    """(kind, name, image, replicas, ready) of every Deployment and CloneSet of the component."""
    out = []
    for kind in ("deployment", "cloneset"):
        for w in get(kubectl, namespace, kind, "-l", f"app.oam.dev/component={component}")[
                "items"]:
            out.append((w["kind"], w["metadata"]["name"],
                        w["spec"]["template"]["spec"]["containers"][0]["image"],
                        str(w["spec"].get("replicas")),
                        str((w.get("status") or {}).get("readyReplicas", 0))))
    return sorted(out)


def names(kubectl: Any, namespace: str, kind: str, component: str = "api") -> list[str]:
    items = get(kubectl, namespace, kind, "-l", f"app.oam.dev/component={component}")["items"]
    return sorted(i["metadata"]["name"] for i in items)


def steady(sample: Any, seconds: float = 10.0, interval: float = 0.5) -> Any:
    """``sample()`` taken repeatedly for ``seconds``: every answer the same (no flapping)."""
    first = sample()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(interval)
        assert sample() == first
    return first


def warnings(kubectl: Any, namespace: str, name: str, reason: str) -> list[str]:
    events = get(kubectl, namespace, "events", "--field-selector",
                 f"involvedObject.name={name},reason={reason}")["items"]
    return [e["message"] for e in events if e["type"] == "Warning"]


def test_removing_the_trait_keeps_serving_on_one_deployment_never_at_zero_ready_pods(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    rolled = application("lifted", component="api", external_revision=None, rollout=plan(3, 1, 2))
    apply(kubectl, namespace, rolled)
    eventually(lambda: rollout_state(kubectl, namespace), equals="rolloutSucceed/api-v1",
               timeout=60, what="the first rollout", context=controller_process.tail)
    plain = application("lifted", component="api", external_revision=None, image=V2_IMAGE,
                        rollout=None)
    with ReadySampler(cluster.kubeconfig, namespace, "api") as sampler:
        sampler.active = True
        apply(kubectl, namespace, plain)
        eventually(lambda: (workloads(kubectl, namespace), names(kubectl, namespace, "rollout")),
                   equals=([("Deployment", "api-v2", V2_IMAGE, "3", "3")], []), timeout=60,
                   what="one plain Deployment of the new image", context=controller_process.tail)
        time.sleep(1)  # the old pods' last moments, sampled too
        sampler.active = False
    assert sampler.samples and min(total for total, _, _ in sampler.samples) >= 3
    uids = steady(lambda: [(d["metadata"]["uid"], d["spec"]["replicas"]) for d in get(
        kubectl, namespace, "deployment", "-l", "app.oam.dev/component=api")["items"]])
    assert len(uids) == 1
    # The trait back: it rolls from the plain workload, which goes once api-v3 serves.
    apply(kubectl, namespace, application("lifted", component="api", external_revision=None,
                                          rollout=plan(3, 1, 2), image="busybox:1"))
    eventually(lambda: workloads(kubectl, namespace),
               equals=[("Deployment", "api-v3", "busybox:1", "3", "3")], timeout=60,
               what="the trait back", context=controller_process.tail)
    assert rollout_state(kubectl, namespace) == "rolloutSucceed/api-v3"


def test_a_removed_component_goes_entirely_within_30_s_and_the_others_stay(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    api = {"name": "api", "type": "webservice",
           "properties": {"image": V1_IMAGE, "ports": [{"port": 80, "expose": True}]},
           "traits": [{"type": "rollout", "properties": plan(2, 2)}]}
    worker = {"name": "worker", "type": "worker", "properties": {"image": "busybox:1"}}
    apply(kubectl, namespace, application_of(api, worker, name="pair"))
    eventually(lambda: (rollout_state(kubectl, namespace), workloads(kubectl, namespace, "worker")),
               equals=("rolloutSucceed/api-v1",
                       [("Deployment", "worker-v1", "busybox:1", "1", "1")]),
               timeout=60, what="both components", context=controller_process.tail)
    assert names(kubectl, namespace, "service") == ["api"]
    before = get(kubectl, namespace, "deployment", "worker-v1")["metadata"]
    apply(kubectl, namespace, application_of(worker, name="pair"))

    def what_is_left() -> dict[str, list[str]]:
        return {kind: names(kubectl, namespace, kind)
                for kind in ("rollout", "deployment", "cloneset", "service", "controllerrevision")}

    eventually(what_is_left, equals={k: [] for k in what_is_left()}, timeout=30,
               what="component api gone", context=controller_process.tail)
    after = get(kubectl, namespace, "deployment", "worker-v1")["metadata"]
    assert (after["uid"], after["generation"]) == (before["uid"], before["generation"])
    assert names(kubectl, namespace, "controllerrevision", "worker") == ["worker-v1"]


def test_changing_the_type_both_ways_leaves_no_orphan(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    steps = [
        ("webservice", V1_IMAGE, [("Deployment", "api-v1", V1_IMAGE, "2", "2")]),
        ("cloneset", V2_IMAGE, [("CloneSet", "api", V2_IMAGE, "2", "2")]),
        ("webservice", "busybox:1", [("Deployment", "api-v3", "busybox:1", "2", "2")]),
    ]
    for type_, image, expected in steps:
        apply(kubectl, namespace, application("shape", component="api", type=type_, image=image,
                                              external_revision=None, rollout=plan(2, 1, 1)))
        eventually(lambda: workloads(kubectl, namespace), equals=expected, timeout=90,
                   what=f"{type_} alone", context=controller_process.tail)
        assert rollout_state(kubectl, namespace).startswith("rolloutSucceed/")


def cloneset_then_webservice(kubectl: Any, namespace: str, controller: ControllerProcess,
                             ) -> None:
    """api-v1 a cloneset, then api-v2 a webservice, each rolled out."""
    steps = [("cloneset", V1_IMAGE, [("CloneSet", "api", V1_IMAGE, "2", "2")]),
             ("webservice", V2_IMAGE, [("Deployment", "api-v2", V2_IMAGE, "2", "2")])]
    for type_, image, expected in steps:
        apply(kubectl, namespace, application("turn", component="api", type=type_, image=image,
                                              external_revision=None, rollout=plan(2, 1, 1)))
        eventually(lambda: workloads(kubectl, namespace), equals=expected, timeout=90,
                   what=f"{type_} alone", context=controller.tail)


ACROSS = ("revision api-v1 is of type cloneset and component 'api' is of type webservice: a"
          " rollout does not cross a type change; name a revision of type webservice or remove"
          " targetRevision")


def test_a_rollback_across_a_type_change_is_refused_at_its_field(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    cloneset_then_webservice(kubectl, namespace, controller_process)
    back = application("turn", component="api", image=V2_IMAGE, external_revision=None,
                       rollout=plan(2, 1, 1, targetRevision="api-v1"))
    with pytest.raises(ToolFailed) as refused:
        apply(kubectl, namespace, back)
    assert ("spec.components[0].traits[0].properties.targetRevision: Invalid value:"
            f' "api-v1": {ACROSS}') in str(refused.value)


def test_a_rollback_across_a_type_change_that_got_past_admission_fails_loudly_and_keeps_serving(
    controller_process: ControllerProcess, kubectl: Any, bypassed_namespace: str,
) -> None:
    # Before: the Rollout sat in initializing for good beside a CloneSet at 0 replicas.
    namespace = bypassed_namespace
    cloneset_then_webservice(kubectl, namespace, controller_process)
    apply(kubectl, namespace, application("turn", component="api", image=V2_IMAGE,
                                          external_revision=None,
                                          rollout=plan(2, 1, 1, targetRevision="api-v1")))

    def ready() -> tuple[str, str, str]:
        status = get(kubectl, namespace, "app", "turn").get("status") or {}
        cond: dict[str, str] = next(
            (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        return status.get("status", ""), cond.get("reason", ""), cond.get("message", "")

    failed = ("failed", "TargetRevisionOfAnotherType", f"component api: {ACROSS}")
    eventually(ready, equals=failed, timeout=30, what="the failure reported",
               context=controller_process.tail)
    settled = steady(lambda: (workloads(kubectl, namespace), rollout_state(kubectl, namespace),
                              get(kubectl, namespace, "app", "turn")["metadata"][
                                  "resourceVersion"]), seconds=6)
    assert settled[:2] == ([("Deployment", "api-v2", V2_IMAGE, "2", "2")],
                           "rolloutSucceed/api-v2")
    assert warnings(kubectl, namespace, "turn", "TargetRevisionOfAnotherType") == [
        f"component api: {ACROSS}"]


def test_two_applications_with_one_component_name_do_not_take_each_others_objects(
    controller_process: ControllerProcess, kubectl: Any, bypassed_namespace: str,
) -> None:
    namespace = bypassed_namespace
    first = application("first", component="api", external_revision=None, rollout=plan(2, 2),
                        properties={"ports": [{"port": 80, "expose": True}]})
    apply(kubectl, namespace, first)
    eventually(lambda: rollout_state(kubectl, namespace), equals="rolloutSucceed/api-v1",
               timeout=60, what="the first app", context=controller_process.tail)
    second = application("second", component="api", external_revision=None, image=V2_IMAGE,
                         rollout=plan(3, 3), properties={"ports": [{"port": 80, "expose": True}]})
    apply(kubectl, namespace, second)

    def ready_of(app: str) -> tuple[str, str, str]:
        status = get(kubectl, namespace, "app", app).get("status") or {}
        ready: dict[str, str] = next(
            (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        return status.get("status", ""), ready.get("reason", ""), ready.get("message", "")

    message = ("component api: Rollout api is controlled by Application first: "
               "not overwritten")
    eventually(lambda: ready_of("second"), equals=("failed", "OwnershipConflict", message),
               timeout=30, what="the conflict reported", context=controller_process.tail)

    def everything() -> list[Any]:
        objs = [get(kubectl, namespace, kind, "api") for kind in ("rollout", "service")]
        return [[(o["metadata"]["resourceVersion"], o["metadata"]["ownerReferences"][0]["name"])
                 for o in objs], workloads(kubectl, namespace), ready_of("first")]

    settled = steady(everything)
    assert settled[0] == [(settled[0][0][0], "first"), (settled[0][1][0], "first")]
    assert settled[1] == [("Deployment", "api-v1", V1_IMAGE, "2", "2")]
    assert settled[2] == ("running", "Reconciled", "")
    assert warnings(kubectl, namespace, "second", "OwnershipConflict") == [message]


def test_a_workload_the_api_refuses_fails_the_rollout_loudly_once(
    controller_process: ControllerProcess, kubectl: Any, bypassed_namespace: str,
) -> None:
    namespace = bypassed_namespace
    ports = [{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]  # one name twice
    apply(kubectl, namespace, application("refused", component="api", external_revision=None,
                                          rollout=plan(1, 1), properties={"ports": ports}))

    def progressing() -> tuple[str, str, str]:
        status = (get(kubectl, namespace, "rollout", "api").get("status") or {})
        cond: dict[str, str] = next((c for c in status.get("conditions") or []
                                     if c["type"] == "Progressing"), {})
        return status.get("rollingState", ""), cond.get("reason", ""), cond.get("message", "")

    _, reason, message = eventually(
        progressing, until=lambda p: p[0] == "rolloutFailed", timeout=30, ignoring=(ToolFailed,),
        what="the refused rollout", context=controller_process.tail)
    assert (reason, "422" in message, "Duplicate value" in message) == ("ApiRefused", True, True)
    version = steady(lambda: get(kubectl, namespace, "rollout", "api")["metadata"][
        "resourceVersion"], seconds=6)
    assert version
    assert warnings(kubectl, namespace, "api", "ApiRefused") == [message]
    assert names(kubectl, namespace, "deployment") == []


def test_at_most_ten_revisions_are_kept_the_newest_among_them_and_any_kept_one_rolls_back(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server

    def version(n: int, **more: Any) -> dict[str, Any]:
        return application("history", component="api", external_revision=None,
                           image=f"stefanprodan/podinfo:5.0.{n}", rollout=plan(1, 1, **more))

    def revisions() -> list[str]:
        return names(kubectl, namespace, "controllerrevision")

    def listed(name: str) -> Callable[[], bool]:
        return lambda: name in revisions()

    for n in range(1, 14):
        apply(kubectl, namespace, version(n))
        eventually(listed(f"api-v{n}"), timeout=30, what=f"revision api-v{n}",
                   context=controller_process.tail)
    eventually(lambda: rollout_state(kubectl, namespace), equals="rolloutSucceed/api-v13",
               timeout=90, what="the last release", context=controller_process.tail)
    kept = eventually(revisions, until=lambda listed: len(listed) <= 10, timeout=30,
                      what="the history trimmed", context=controller_process.tail)
    assert "api-v13" in kept
    oldest = min(kept, key=lambda name: int(name.rsplit("v", 1)[1]))
    number = int(oldest.rsplit("v", 1)[1])
    apply(kubectl, namespace, version(13, targetRevision=oldest))
    eventually(lambda: workloads(kubectl, namespace),
               equals=[("Deployment", oldest, f"stefanprodan/podinfo:5.0.{number}", "1", "1")],
               timeout=90, what=f"the rollback to {oldest}", context=controller_process.tail)
    assert rollout_state(kubectl, namespace) == f"rolloutSucceed/{oldest}"
    assert oldest in revisions()
