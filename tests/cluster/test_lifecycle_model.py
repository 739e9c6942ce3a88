"""A model of one Application, driven through random admitted changes on the local control
plane with the webhook and the controller running (hypothesis stateful testing).

The changes are the ones a platform team makes: a new image, a new size (a pure scale or
an upgrade that also resizes), new batches, a parked upgrade (batchPartition) and its
release, a rollback through targetRevision, a component added or removed, the rollout
trait added or removed, the component type changed, a port exposed or not, the whole
Application deleted and created again. A change the webhook denies must name a field path
and leaves the model as it was. After each admitted change settles:

- exactly the objects the spec implies exist: a Rollout per component with the trait, one
  workload per settled component (a Deployment named after the target revision, or the
  CloneSet named after the component) with the planned replicas all Ready, a Service per
  webservice whose target revision exposes a port, at most ``REVISION_LIMIT``
  ControllerRevisions per component and none of a removed one; nothing else the
  Application controls;
- each of them is controlled by the Application (its controller ownerReference's UID);
- the controller writes nothing at rest: every object's resourceVersion, the
  Application's included, stays the same for ``REST_SECONDS`` (leader-Lease renewals live
  in another namespace);
- the ready-pod invariant held through every upgrade at an unchanged size: the Ready pods
  of the component never left targetSize -/+ the current batch's replicas.

Bounded for CI (a fixed seed, two sequences of ``STEPS`` = 10 changes, about three minutes
on two cores):
OAM_ROLLOUT_MODEL_EXAMPLES and OAM_ROLLOUT_MODEL_STEPS run it longer, and
OAM_ROLLOUT_MODEL_SEED picks another sequence. No shrinking: each step costs seconds of a
real cluster, and the failure message prints the steps taken.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.fixtures.apps import manifest
from tests.fixtures.cluster import ToolFailed
from tests.fixtures.controller import ControllerProcess, ReadySampler
from tests.fixtures.polling import eventually
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

APP = "model"
COMPONENTS = ("api", "web")
TYPES = ("webservice", "worker", "cloneset")
IMAGES = tuple(f"stefanprodan/podinfo:6.0.{n}" for n in range(6))
# Batches as percentages: they resolve against whatever the change needs (targetSize for an
# upgrade, the size change for a pure scale), so every plan below is admissible.
BATCHES = (["100%"], ["50%", "50%"], ["34%", "33%", "33%"])
REVISION_LIMIT = 10
REST_SECONDS = 4.0
SETTLE_SECONDS = 120.0
KINDS = "rollout,deployment,cloneset,service,controllerrevision"
WORKLOAD_KIND = {"webservice": "Deployment", "worker": "Deployment", "cloneset": "CloneSet"}

EXAMPLES = int(os.environ.get("OAM_ROLLOUT_MODEL_EXAMPLES", "2"))
STEPS = int(os.environ.get("OAM_ROLLOUT_MODEL_STEPS", "10"))
SEED = int(os.environ.get("OAM_ROLLOUT_MODEL_SEED", "20261207"))
# The steps each example took, printed at the end (how much was admitted, how much denied).
TAKEN: list[list[str]] = []


@dataclass
class Component:
    """What the spec says of one component (the model's whole state for it)."""

    name: str
    type: str
    image: str
    size: int | None = None  # the rollout trait's targetSize; None: no trait
    batches: list[str] = field(default_factory=lambda: ["100%"])
    partition: int | None = None
    target_revision: str | None = None
    exposed: bool = False

    def spec(self) -> dict[str, Any]:
        properties: dict[str, Any] = {"image": self.image}
        if self.type == "webservice" and self.exposed:
            properties["ports"] = [{"port": 80, "expose": True}]
        comp: dict[str, Any] = {"name": self.name, "type": self.type, "properties": properties}
        if self.size is not None:
            trait: dict[str, Any] = {"targetSize": self.size,
                                     "rolloutBatches": [{"replicas": b} for b in self.batches]}
            if self.partition is not None:
                trait["batchPartition"] = self.partition
            if self.target_revision is not None:
                trait["targetRevision"] = self.target_revision
            comp["traits"] = [{"type": "rollout", "properties": trait}]
        return comp

    @property
    def parked(self) -> bool:
        return self.partition is not None and self.partition < len(self.batches) - 1


def controlled_by(obj: dict[str, Any]) -> str | None:
    return next((o.get("uid") for o in obj["metadata"].get("ownerReferences") or []
                 if o.get("controller")), None)


def component_of(obj: dict[str, Any]) -> str:
    labels = obj["metadata"].get("labels") or {}
    return str(labels.get("app.oam.dev/component")
               or labels.get("controller.oam.dev/component") or "")


def varied(name: str, test: Any = None) -> Any:
    """A rule's precondition: ``test`` holds, and the rule did not run the step before
    (hypothesis's first example is its simplest: without this it repeats one rule)."""
    return precondition(lambda self: self.last_rule != name and (test is None or test(self)))


class ApplicationModel(RuleBasedStateMachine):
    """One Application ``model`` in its own namespace; the rules are the changes."""

    kubectl: Any = None
    namespace: str = ""
    kubeconfig: Any = None
    controller: ControllerProcess | None = None

    def __init__(self) -> None:
        super().__init__()
        self.components: dict[str, Component] = {}
        self.steps: list[str] = []
        self.deleted = False
        self.last_rule = ""

    # -- the cluster side ------------------------------------------------------------

    def app(self) -> dict[str, Any]:
        return {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
                "metadata": {"name": APP},
                "spec": {"components": [c.spec() for c in self.components.values()]}}

    def submit(self, changed: dict[str, Component], why: str,
               upgrade_of: str | None = None) -> None:
        """Apply the spec ``changed`` describes; on a denial keep the model, on admission
        adopt it and check the settled cluster."""
        before = self.components
        self.components = changed
        text = manifest(self.app())
        result = self.kubectl("apply", "-n", self.namespace, "-f", "-", input=text,
                              check=False)
        if result.returncode != 0:
            self.components = before
            self.steps.append(f"{why}: denied")
            # A denial is ours (a field path) or the API's (schema), never a crash.
            assert "spec.components[" in result.stderr or "spec." in result.stderr, (
                f"{why}: refused without a field path:\n{result.stderr}\n{self.history()}")
            return
        self.steps.append(why)
        if upgrade_of is None:
            self.settle(why)
            return
        with ReadySampler(self.kubeconfig, self.namespace, upgrade_of) as sampler:
            sampler.active = True
            self.settle(why)
            sampler.active = False
        assert sampler.samples, f"{why}: no Ready pods sampled\n{self.history()}"
        assert sampler.violations() == [], (
            f"{why}: Ready pods out of bounds (ready, low, high): {sampler.violations()}\n"
            f"{self.history()}")

    def history(self) -> str:
        tail = self.controller.tail(40) if self.controller else ""
        return "steps:\n  " + "\n  ".join(self.steps) + f"\ncontroller log:\n{tail}"

    def listing(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        app = self.kubectl("get", "app", APP, "-n", self.namespace, "-o", "json", check=False)
        objs = json.loads(self.kubectl("get", KINDS, "-n", self.namespace, "-o", "json")
                          .stdout)["items"]  # fmt: skip
        return (json.loads(app.stdout) if app.returncode == 0 else None), objs

    def problems(self) -> list[str]:
        """What differs between the cluster and the model (empty: settled)."""
        app, objs = self.listing()
        if app is None:
            return [f"{o['kind']}/{o['metadata']['name']} outlives the Application"
                    for o in objs] if not self.components else ["the Application is missing"]
        uid = app["metadata"]["uid"]
        out: list[str] = []
        status = app.get("status") or {}
        if status.get("observedGeneration") != app["metadata"]["generation"]:
            out.append("the Application's status is behind its generation")
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        # A parked rollout holds after a Ready batch, which is healthy too: the status must
        # have caught up with it before the cluster counts as at rest.
        if (status.get("status"), ready.get("status")) != ("running", "True"):
            out.append(f"the Application is {status.get('status')}, Ready={ready.get('status')}")
        reported = sorted(s.get("name") for s in status.get("services") or [])
        if reported != sorted(self.components):
            out.append(f"the Application reports services {reported}")
        mine = [o for o in objs if controlled_by(o) == uid]
        expected: set[tuple[str, str]] = set()
        live = {c.get("name"): c for c in app["spec"].get("components") or []}
        for comp in self.components.values():
            out += self.component_problems(comp, live.get(comp.name) or {}, mine, expected)
        for obj in mine:
            key = (obj["kind"], obj["metadata"]["name"])
            if obj["kind"] == "ControllerRevision":
                if component_of(obj) not in self.components:
                    out.append(f"revision {key[1]} of a removed component")
            elif key not in expected:
                out.append(f"{key[0]}/{key[1]} is not implied by the spec")
        for obj in objs:
            owner = controlled_by(obj)
            if owner is not None and owner != uid and obj["kind"] != "ControllerRevision":
                out.append(f"{obj['kind']}/{obj['metadata']['name']} is controlled by {owner}")
        return out

    def component_problems(self, comp: Component, live: dict[str, Any],
                           mine: list[dict[str, Any]],
                           expected: set[tuple[str, str]]) -> list[str]:
        out: list[str] = []
        of = [o for o in mine if component_of(o) == comp.name]
        revisions = sorted((o for o in of if o["kind"] == "ControllerRevision"),
                           key=lambda o: int(o.get("revision") or 0))
        if not revisions:
            return [f"{comp.name}: no ControllerRevision"]
        if len(revisions) > REVISION_LIMIT:
            out.append(f"{comp.name}: {len(revisions)} revisions kept")
        # The revision of the spec as it stands (as admitted): a spec that returns to an
        # earlier revision's content reuses that revision, as KubeVela does.
        holding = [o["metadata"]["name"] for o in revisions
                   if (o.get("data") or {}).get("type") == comp.type
                   and (o.get("data") or {}).get("properties") == live.get("properties")]
        if not holding:
            return [*out, f"{comp.name}: no revision holds the current spec"]
        target = comp.target_revision or holding[-1]
        kind = WORKLOAD_KIND[comp.type]
        workloads = [o for o in of if o["kind"] in ("Deployment", "CloneSet")]
        if comp.size is not None:
            expected.add(("Rollout", comp.name))
            rollout = next((o for o in of if o["kind"] == "Rollout"), None)
            if rollout is None:
                return [*out, f"{comp.name}: no Rollout"]
            state = (rollout.get("status") or {})
            if state.get("lastTargetRevision") != target:
                out.append(f"{comp.name}: Rollout targets {state.get('lastTargetRevision')}"
                           f" rather than {target}")
            if comp.parked:
                # Held after the partition's batch, that batch Ready (as in the walkthrough).
                held = (state.get("rollingState"), state.get("batchRollingState"),
                        state.get("currentBatch"))
                if held != ("rollingInBatches", "batchReady", comp.partition):
                    out.append(f"{comp.name}: parked at {held}")
            elif state.get("rollingState") != "rolloutSucceed":
                out.append(f"{comp.name}: Rollout is {state.get('rollingState')}")
        for w in workloads:
            expected.add((w["kind"], w["metadata"]["name"]))
        if comp.parked:
            # Mid-upgrade by request: the target's workload, beside what the run has not
            # reached yet (the source; after a change mid-run, the revisions it left
            # behind too), each a kept revision of this component.
            names = {w["metadata"]["name"] for w in workloads}
            want = target if kind == "Deployment" else comp.name
            kept = {r["metadata"]["name"] for r in revisions} if kind == "Deployment" else {want}
            if want not in names or not names <= kept:
                out.append(f"{comp.name}: parked with workloads {sorted(names)}")
        else:
            want = target if kind == "Deployment" else comp.name
            shape = sorted((w["kind"], w["metadata"]["name"]) for w in workloads)
            if shape != [(kind, want)]:
                out.append(f"{comp.name}: workloads {shape}, want {[(kind, want)]}")
            for w in workloads:
                replicas = w["spec"].get("replicas")
                ready = (w.get("status") or {}).get("readyReplicas", 0) or 0
                if comp.size is not None and replicas != comp.size:
                    out.append(f"{comp.name}: {w['metadata']['name']} has {replicas} replicas,"
                               f" want {comp.size}")
                if ready != replicas:
                    out.append(f"{comp.name}: {ready} of {replicas} Ready")
        # The Service comes with the revision rolled to: a rollback to a revision without
        # an exposed port runs without one (the target is rendered whole, as in KubeVela).
        shown = next((r for r in revisions if r["metadata"]["name"] == target), None)
        ports = ((shown or {}).get("data") or {}).get("properties", {}).get("ports") or []
        exposed = (any(isinstance(p, dict) and p.get("expose") is True for p in ports)
                   if shown is not None else comp.exposed)
        if comp.type == "webservice" and exposed:
            expected.add(("Service", comp.name))
            if not any(o["kind"] == "Service" for o in of):
                out.append(f"{comp.name}: no Service")
        return out

    def settle(self, why: str) -> None:
        eventually(self.problems, equals=[], timeout=SETTLE_SECONDS, interval=0.5,
                   what=f"the cluster after {why}", context=self.history)
        # At rest: no object (the Application included) is written again.
        def versions() -> dict[str, str]:
            app, objs = self.listing()
            seen = {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
                    for o in objs}
            if app is not None:
                seen["Application"] = app["metadata"]["resourceVersion"]
            return seen

        first = versions()
        time.sleep(REST_SECONDS)
        later = versions()
        moved = {k: (first.get(k), later.get(k)) for k in set(first) | set(later)
                 if first.get(k) != later.get(k)}
        assert moved == {}, f"{why}: written at rest: {moved}\n{self.history()}"

    def with_component(self, name: str, **changes: Any) -> dict[str, Component]:
        comps = copy.deepcopy(self.components)
        comp = comps[name]
        for key, value in changes.items():
            setattr(comp, key, value)
        return comps

    def settled_rollout(self, name: str) -> bool:
        comp = self.components.get(name)
        return comp is not None and comp.size is not None and not comp.parked

    # -- the rules -------------------------------------------------------------------

    # Each rule runs only where it is a change (its precondition), and draws the component
    # it changes from those it applies to, so no step of the budget is spent on a no-op.

    def named(self, test: Any) -> list[str]:
        return sorted(name for name, comp in self.components.items() if test(comp))

    def pick(self, data: Any, test: Any) -> Component:
        return self.components[data.draw(st.sampled_from(self.named(test)))]

    @initialize(type_=st.sampled_from(TYPES), size=st.integers(1, 3),
                batches=st.sampled_from(BATCHES))
    def create(self, type_: str, size: int, batches: list[str]) -> None:
        self.components = {}
        self.deleted = False
        comps = {"api": Component("api", type_, IMAGES[0], size, list(batches))}
        self.submit(comps, f"create api ({type_}, {size} in {batches})")

    @varied("new_image")
    @rule(data=st.data(), image=st.sampled_from(IMAGES))
    def new_image(self, data: Any, image: str) -> None:
        self.last_rule = "new_image"
        comp = self.pick(data, lambda c: True)
        if comp.image == image:
            image = IMAGES[(IMAGES.index(image) + 1) % len(IMAGES)]
        upgrade = self.settled_rollout(comp.name) and comp.target_revision is None
        self.submit(self.with_component(comp.name, image=image, target_revision=None),
                    f"{comp.name}: image {image}", upgrade_of=comp.name if upgrade else None)

    @varied("resize", lambda self: any(c.size is not None for c in self.components.values()))
    @rule(data=st.data(), size=st.integers(1, 4), batches=st.sampled_from(BATCHES),
          image=st.sampled_from((None, *IMAGES)))
    def resize(self, data: Any, size: int, batches: list[str], image: str | None) -> None:
        self.last_rule = "resize"
        comp = self.pick(data, lambda c: c.size is not None)
        self.submit(self.with_component(comp.name, size=size, batches=list(batches),
                                        image=image or comp.image, target_revision=None),
                    f"{comp.name}: size {size} in {batches}"
                    + (f", image {image}" if image else ""))

    @varied("parked_upgrade", lambda self: any(c.size is not None and not c.parked
                                   for c in self.components.values()))
    @rule(data=st.data(), image=st.sampled_from(IMAGES))
    def parked_upgrade(self, data: Any, image: str) -> None:
        self.last_rule = "parked_upgrade"
        comp = self.pick(data, lambda c: c.size is not None and not c.parked)
        avoid = {comp.image}
        if comp.target_revision is not None:
            # Rolled back: an image that returns to the running revision's content reuses
            # that revision, and a run to what runs already has nothing to park at.
            _, objs = self.listing()
            avoid |= {((o.get("data") or {}).get("properties") or {}).get("image")
                      for o in objs if o["kind"] == "ControllerRevision"
                      and o["metadata"]["name"] == comp.target_revision}
        while image in avoid:
            image = IMAGES[(IMAGES.index(image) + 1) % len(IMAGES)]
        self.submit(self.with_component(comp.name, image=image, batches=["50%", "50%"],
                                        partition=0, target_revision=None),
                    f"{comp.name}: image {image}, parked after batch 0")

    @varied("release",
            lambda self: any(c.partition is not None for c in self.components.values()))
    @rule(data=st.data())
    def release(self, data: Any) -> None:
        self.last_rule = "release"
        comp = self.pick(data, lambda c: c.partition is not None)
        self.submit(self.with_component(comp.name, partition=None),
                    f"{comp.name}: partition removed")

    @varied("rollback", lambda self: any(self.settled_rollout(n) for n in self.components))
    @rule(data=st.data(), pick=st.integers(0, 20))
    def rollback(self, data: Any, pick: int) -> None:
        self.last_rule = "rollback"
        comp = self.pick(data, lambda c: self.settled_rollout(c.name))
        _, objs = self.listing()
        kept = sorted((o for o in objs if o["kind"] == "ControllerRevision"
                       and component_of(o) == comp.name),
                      key=lambda o: int(o.get("revision") or 0))  # fmt: skip
        older = [o["metadata"]["name"] for o in kept[:-1]]
        if not older:  # one revision so far: a rollback is an upgrade first
            return self.new_image(data, IMAGES[-1])
        target = older[pick % len(older)]
        self.submit(self.with_component(comp.name, target_revision=target),
                    f"{comp.name}: roll back to {target}")
        return None

    @varied("add_component", lambda self: len(self.components) < len(COMPONENTS))
    @rule(type_=st.sampled_from(TYPES), size=st.sampled_from((None, 1, 2)))
    def add_component(self, type_: str, size: int | None) -> None:
        self.last_rule = "add_component"
        name = next(n for n in COMPONENTS if n not in self.components)
        comps = copy.deepcopy(self.components)
        comps[name] = Component(name, type_, IMAGES[1], size)
        self.submit(comps, f"add {name} ({type_}, " + (f"{size} by rollout)" if size
                                                        else "no trait)"))

    @varied("remove_component", lambda self: len(self.components) > 1)
    @rule(data=st.data())
    def remove_component(self, data: Any) -> None:
        self.last_rule = "remove_component"
        comp = self.pick(data, lambda c: True)
        comps = copy.deepcopy(self.components)
        del comps[comp.name]
        self.submit(comps, f"remove {comp.name}")

    @varied("toggle_trait", lambda self: any(not c.parked for c in self.components.values()))
    @rule(data=st.data(), size=st.integers(1, 3))
    def toggle_trait(self, data: Any, size: int) -> None:
        self.last_rule = "toggle_trait"
        comp = self.pick(data, lambda c: not c.parked)
        if comp.size is None:
            self.submit(self.with_component(comp.name, size=size, batches=["100%"]),
                        f"{comp.name}: rollout trait added ({size})")
        else:
            self.submit(self.with_component(comp.name, size=None, partition=None,
                                            target_revision=None),
                        f"{comp.name}: rollout trait removed")

    @varied("change_type", lambda self: any(not c.parked for c in self.components.values()))
    @rule(data=st.data(), shift=st.integers(1, len(TYPES) - 1))
    def change_type(self, data: Any, shift: int) -> None:
        self.last_rule = "change_type"
        comp = self.pick(data, lambda c: not c.parked)
        type_ = TYPES[(TYPES.index(comp.type) + shift) % len(TYPES)]
        self.submit(self.with_component(comp.name, type=type_, target_revision=None),
                    f"{comp.name}: type {comp.type} -> {type_}")

    @varied("toggle_expose",
            lambda self: any(c.type == "webservice" for c in self.components.values()))
    @rule(data=st.data())
    def toggle_expose(self, data: Any) -> None:
        self.last_rule = "toggle_expose"
        comp = self.pick(data, lambda c: c.type == "webservice")
        self.submit(self.with_component(comp.name, exposed=not comp.exposed),
                    f"{comp.name}: {'unexposed' if comp.exposed else 'exposed'}")

    # Once per sequence: deleting and re-creating costs the most and finds the least.
    @varied("delete_and_recreate", lambda self: not self.deleted)
    @rule()
    def delete_and_recreate(self) -> None:
        self.last_rule = "delete_and_recreate"
        self.deleted = True
        self.kubectl("delete", "app", APP, "-n", self.namespace, "--wait=true")
        self.steps.append("delete the Application")
        before, self.components = self.components, {}
        eventually(self.problems, equals=[], timeout=60, interval=0.5,
                   what="every object of the deleted Application gone", context=self.history)
        comps = {name: Component(name, c.type, c.image, c.size, list(c.batches), None, None,
                                 c.exposed) for name, c in before.items()}
        self.submit(comps, "create the Application again")

    def teardown(self) -> None:
        TAKEN.append(list(self.steps))
        self.kubectl("delete", "app", APP, "-n", self.namespace, "--ignore-not-found",
                     "--wait=true", check=False)
        # The next example starts from an empty namespace: the garbage collector has
        # removed what the deleted Application controlled.
        self.components = {}
        eventually(self.problems, equals=[], timeout=60, interval=0.5,
                   what="the namespace empty after the example", context=self.history)


def test_random_admitted_changes_always_settle_to_exactly_what_the_spec_implies(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    ApplicationModel.kubectl = staticmethod(kubectl)
    ApplicationModel.namespace = namespace
    ApplicationModel.kubeconfig = cluster.kubeconfig
    ApplicationModel.controller = controller_process
    began = time.monotonic()
    try:
        run_state_machine_as_test(seed(SEED)(ApplicationModel), settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
            derandomize=False, phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck), print_blob=False,
        ), _min_steps=STEPS)  # fmt: skip
    except ToolFailed as exc:  # a kubectl call the model did not expect to fail
        raise AssertionError(f"kubectl failed: {exc}") from exc
    steps = [step for example in TAKEN for step in example]
    denied = sum(step.endswith(": denied") for step in steps)
    print(f"model test: {len(TAKEN)} example(s), {len(steps)} changes ({denied} denied) in "
          f"{time.monotonic() - began:.0f} s (seed {SEED})")
    for number, example in enumerate(TAKEN, 1):
        print(f"  example {number}: " + "; ".join(example))
    assert len(steps) > denied, "no change was admitted: the model tested nothing"
