"""The demo's scenario as plain data: the Applications applied, in order, and what each must reach.

Holds ``scenario`` (the spec's rollout-trait walkthrough, then a CloneSet), the
``Step`` and ``Expectation`` values it is made of, and ``application``, the one-component
Application builder the demo applies. It must not do I/O and must not hold rollout or
admission logic: the expectations are what the spec's walkthrough shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core.labels import (
    APP_API_VERSION,
    APP_KIND,
    BATCH_READY,
    LABEL_COMPONENT,
    LABEL_CONTROLLER_COMPONENT,
    ROLLING_IN_BATCHES,
    ROLLOUT_SUCCEED,
    ROLLOUT_TRAIT,
)

NAMESPACE = "default"
IMAGE_V1 = "stefanprodan/podinfo:4.0.3"
IMAGE_V2 = "stefanprodan/podinfo:5.0.2"


@dataclass(frozen=True)
class RolloutView:
    """The columns of `kubectl get rollout`: TARGET UPGRADED READY BATCH-STATE ROLLING-STATE."""

    target: int | None
    upgraded: int | None
    ready: int | None
    batch_state: str | None
    rolling_state: str | None


@dataclass(frozen=True)
class Expectation:
    """The live state a step must reach before its views are printed."""

    rollout: RolloutView
    # The revision the rollout aims at (Rollout status.lastTargetRevision).
    target_revision: str
    # Every workload of the component: name -> "ready/desired", as kubectl's READY column.
    workloads: Mapping[str, str]


@dataclass(frozen=True)
class Step:
    """One `kubectl apply` of the scenario, what it must lead to, and what to show after."""

    title: str
    explanation: str
    application: Mapping[str, Any]
    expect: Expectation | None
    views: tuple[tuple[str, ...], ...]
    # True when the webhook must refuse the change.
    denied: bool = False

    @property
    def app_name(self) -> str:
        return str(self.application["metadata"]["name"])

    @property
    def component(self) -> str:
        return str(self.application["spec"]["components"][0]["name"])


def application(
    name: str,
    component: str,
    component_type: str,
    revision: str,
    image: str,
    target_size: int,
    batches: Sequence[int],
    *,
    partition: int | None = None,
    target_revision: str | None = None,
) -> dict[str, Any]:
    """An Application with one component carrying a rollout trait."""
    plan: dict[str, Any] = {}
    if target_revision is not None:
        plan["targetRevision"] = target_revision
    plan["targetSize"] = target_size
    if partition is not None:
        plan["batchPartition"] = partition
    plan["rolloutBatches"] = [{"replicas": n} for n in batches]
    return {
        "apiVersion": APP_API_VERSION,
        "kind": APP_KIND,
        "metadata": {"name": name},
        "spec": {
            "components": [
                {
                    "name": component,
                    "type": component_type,
                    "externalRevision": revision,
                    "properties": {"image": image},
                    "traits": [{"type": ROLLOUT_TRAIT, "properties": plan}],
                }
            ]
        },
    }


def _views(app: str, component: str, *which: str) -> tuple[tuple[str, ...], ...]:
    """kubectl argument lists for the spec's views of one component."""
    table = {
        "app": ("get", "app", app),
        "revisions": (
            "get",
            "controllerrevision",
            "-l",
            f"{LABEL_CONTROLLER_COMPONENT}={component}",
        ),
        "rollout": ("get", "rollout", component),
        "deploy": ("get", "deploy", "-l", f"{LABEL_COMPONENT}={component}"),
        "cloneset": ("get", "cloneset", "-l", f"{LABEL_COMPONENT}={component}"),
        "image": (
            "get",
            "cloneset",
            component,
            "-o=jsonpath={.spec.template.spec.containers[0].image}",
        ),
    }
    return tuple(table[w] for w in which)


def _done(size: int, revision: str, workloads: Mapping[str, str]) -> Expectation:
    return Expectation(
        RolloutView(size, size, size, BATCH_READY, ROLLOUT_SUCCEED), revision, workloads
    )


def scenario(include_cloneset: bool = True) -> list[Step]:
    """The rollout-trait walkthrough: deploy, partial upgrade, finish, rollback, scale, refuse."""
    app, comp = "rollout-trait-test", "express-server"
    v1, v2 = f"{comp}-v1", f"{comp}-v2"

    def web(revision: str, image: str, size: int, batches: Sequence[int], **kw: Any) -> Any:
        return application(app, comp, "webservice", revision, image, size, batches, **kw)

    steps = [
        Step(
            "首次发布 · first deploy",
            f"5 replicas of {v1} in two batches (2, then 3 once the first 2 are ready).",
            web(v1, IMAGE_V1, 5, [2, 3]),
            _done(5, v1, {v1: "5/5"}),
            _views(app, comp, "app", "revisions", "rollout", "deploy"),
        ),
        Step(
            "灰度升级 · batch upgrade, first batch only",
            f"New image, new revision {v2}; batchPartition 0 stops after the first batch.",
            web(v2, IMAGE_V2, 5, [2, 3], partition=0),
            Expectation(
                RolloutView(5, 2, 2, BATCH_READY, ROLLING_IN_BATCHES), v2, {v1: "3/3", v2: "2/2"}
            ),
            _views(app, comp, "revisions", "rollout", "deploy"),
        ),
        Step(
            "完成升级 · finish the upgrade",
            "Without batchPartition every batch rolls; the old Deployment goes away.",
            web(v2, IMAGE_V2, 5, [2, 3]),
            _done(5, v2, {v2: "5/5"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "回滚 · rollback",
            f"targetRevision {v1} rolls the component back to the earlier revision.",
            web(v2, IMAGE_V2, 5, [2, 3], target_revision=v1),
            _done(5, v1, {v1: "5/5"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "扩容 · scale up",
            "From 5 to 7 replicas, one more per batch.",
            web(v2, IMAGE_V2, 7, [1, 1], target_revision=v1),
            _done(7, v1, {v1: "7/7"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "缩容 · scale down",
            "From 7 to 3 replicas: first 1 fewer, then 3 fewer.",
            web(v2, IMAGE_V2, 3, [1, 3], target_revision=v1),
            _done(3, v1, {v1: "3/3"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "拒绝 · a change the webhook refuses",
            "Scaling 3 -> 6 needs batches adding up to 3; 1 + 1 is refused before it is stored.",
            web(v2, IMAGE_V2, 6, [1, 1], target_revision=v1),
            None,
            _views(app, comp, "rollout"),
            denied=True,
        ),
    ]
    if include_cloneset:
        capp, ccomp = "rollout-trait-test-cloneset", "cloneset-server"
        c1, c2 = f"{ccomp}-v1", f"{ccomp}-v2"

        def clone(revision: str, image: str) -> Any:
            return application(capp, ccomp, "cloneset", revision, image, 5, [2, 3])

        steps += [
            Step(
                "cloneset 首次发布 · first deploy of a CloneSet",
                "A cloneset workload is named after the component and updated in place.",
                clone(c1, IMAGE_V1),
                _done(5, c1, {ccomp: "5/5"}),
                _views(capp, ccomp, "app", "revisions", "rollout", "cloneset", "image"),
            ),
            Step(
                "cloneset 升级 · in-place upgrade",
                f"New image, revision {c2}; the workload keeps its name.",
                clone(c2, IMAGE_V2),
                _done(5, c2, {ccomp: "5/5"}),
                _views(capp, ccomp, "revisions", "rollout", "cloneset", "image"),
            ),
        ]
    return steps
