"""SimulatedCloneSetController: a SIMULATION of OpenKruise's CloneSet controller.

Holds just enough of Kruise's behaviour for tests and the demo on a cluster
without Kruise: pods for `spec.replicas`, scale down (unready, then old revision,
then newest pods first), in-place update of container images bounded by
`spec.updateStrategy.partition` (pods whose template changed beyond images are
recreated), and the status counters Kruise writes. The plan for one CloneSet is a
pure function (plan_cloneset / cloneset_status); the class only does I/O.
Simplifications: new pods always get the update revision, maxUnavailable is not
honoured (all pods the partition allows are updated at once). It must not touch
objects it does not own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook.core.labels import CLONESET_GROUP, CLONESET_KIND, CLONESET_PLURAL, CLONESET_VERSION
from webhook.kube.reader import ApiReader, load_credentials
from webhook.kube.watching import EachObject, ListWatch
from webhook.localcluster.kubelet import WATCH_POLICY
from webhook.localcluster.pods import condition

log = logging.getLogger("oam_rollout.localcluster")

REVISION_LABEL = "controller-revision-hash"  # the label Kruise puts on its pods
SHAPE_ANNOTATION = "sim.oam-rollout.dev/template-shape"  # template hash ignoring images


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def revision_name(cloneset: Mapping[str, Any]) -> str:
    """`<name>-<hash of spec.template>`, like Kruise's updateRevision."""
    return f"{cloneset['metadata']['name']}-{_digest(cloneset['spec'].get('template', {}))}"


def template_shape(template: Mapping[str, Any]) -> str:
    """Hash of the template with container images blanked: equal shapes update in place."""
    spec = dict(template.get("spec", {}))
    spec["containers"] = [{**c, "image": ""} for c in spec.get("containers", [])]
    return _digest({**template, "spec": spec})


def scaled_partition(partition: int | str | None, replicas: int) -> int:
    """Partition as a pod count: an int or "N%" of replicas (rounded up), within [0, replicas]."""
    if partition is None:
        return 0
    if isinstance(partition, str):
        text = partition.strip()
        count = math.ceil(replicas * float(text[:-1]) / 100) if text.endswith("%") else int(text)
    else:
        count = int(partition)
    return max(0, min(count, replicas))


@dataclass(frozen=True)
class PodView:
    """The facts about one owned pod that planning needs."""

    name: str
    revision: str
    ready: bool
    terminating: bool
    created: str
    shape: str = ""


@dataclass(frozen=True)
class CloneSetPlan:
    create: int = 0
    delete: tuple[str, ...] = ()
    update_in_place: tuple[str, ...] = ()
    recreate: tuple[str, ...] = ()


def plan_cloneset(
    replicas: int,
    partition: int,
    update_revision: str,
    shape: str,
    pods: Sequence[PodView],
    paused: bool = False,
) -> CloneSetPlan:
    """What to do so `replicas` pods run and all but `partition` run update_revision."""
    active = [p for p in pods if not p.terminating]
    create = max(0, replicas - len(active))
    delete: list[str] = []
    if len(active) > replicas:
        # Kruise scales in unready pods first, then old revisions, then the newest.
        victims = sorted(
            active,
            key=lambda p: (p.ready, p.revision == update_revision, _neg(p.created)),
        )
        delete = [p.name for p in victims[: len(active) - replicas]]
    remaining = [p for p in active if p.name not in delete]
    updated = sum(1 for p in remaining if p.revision == update_revision)
    wanted = max(0, replicas - partition) - updated - create
    if paused or wanted <= 0:
        return CloneSetPlan(create=create, delete=tuple(delete))
    old = sorted(
        (p for p in remaining if p.revision != update_revision),
        key=lambda p: (p.ready, p.created),
    )[:wanted]
    in_place = tuple(p.name for p in old if p.shape == shape)
    recreate = tuple(p.name for p in old if p.shape != shape)
    return CloneSetPlan(
        create=create, delete=tuple(delete), update_in_place=in_place, recreate=recreate
    )


def _neg(timestamp: str) -> tuple[int, ...]:
    """Sort key that puts later RFC 3339 timestamps first."""
    return tuple(-ord(ch) for ch in timestamp)


def cloneset_status(
    cloneset: Mapping[str, Any], pods: Sequence[PodView], update_revision: str
) -> dict[str, Any]:
    """The status Kruise would report for these pods."""
    active = [p for p in pods if not p.terminating]
    ready = sum(1 for p in active if p.ready)
    updated = [p for p in active if p.revision == update_revision]
    selector = cloneset["spec"].get("selector", {}).get("matchLabels", {})
    revisions = Counter(p.revision for p in active if p.revision != update_revision)
    current = update_revision if not revisions else revisions.most_common(1)[0][0]
    return {
        "observedGeneration": cloneset["metadata"].get("generation", 0),
        "replicas": len(active),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "updatedReplicas": len(updated),
        "updatedReadyReplicas": sum(1 for p in updated if p.ready),
        "updateRevision": update_revision,
        "currentRevision": current,
        "labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
    }


def pod_view(pod: Mapping[str, Any]) -> PodView:
    meta = pod["metadata"]
    return PodView(
        name=meta["name"],
        revision=(meta.get("labels") or {}).get(REVISION_LABEL, ""),
        ready=condition(pod, "Ready") == "True",
        terminating=bool(meta.get("deletionTimestamp")),
        created=meta.get("creationTimestamp", ""),
        shape=(meta.get("annotations") or {}).get(SHAPE_ANNOTATION, ""),
    )


def owned_by(pod: Mapping[str, Any], uid: str) -> bool:
    refs = pod.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


def new_pod(cloneset: Mapping[str, Any], update_revision: str, shape: str) -> dict[str, Any]:
    meta = cloneset["metadata"]
    template = cloneset["spec"].get("template", {})
    tmeta = template.get("metadata", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{meta['name']}-",
            "namespace": meta["namespace"],
            "labels": {**(tmeta.get("labels") or {}), REVISION_LABEL: update_revision},
            "annotations": {**(tmeta.get("annotations") or {}), SHAPE_ANNOTATION: shape},
            "ownerReferences": [
                {
                    "apiVersion": f"{CLONESET_GROUP}/{CLONESET_VERSION}",
                    "kind": CLONESET_KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template.get("spec", {}),
    }


def in_place_patch(cloneset: Mapping[str, Any], update_revision: str) -> dict[str, Any]:
    """Strategic merge patch: new images and revision label (the only in-place change)."""
    template = cloneset["spec"].get("template", {})
    containers = [
        {"name": c["name"], "image": c.get("image", "")}
        for c in template.get("spec", {}).get("containers", [])
    ]
    labels = {**(template.get("metadata", {}).get("labels") or {}), REVISION_LABEL: update_revision}
    return {"metadata": {"labels": labels}, "spec": {"containers": containers}}


class SimulatedCloneSetController:
    """Reconciles every CloneSet of the cluster (simulation of OpenKruise)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self._queue: list[tuple[str, str]] = []
        self._queued: set[tuple[str, str]] = set()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._api: Any = None
        self._core: Any = None
        self._custom: Any = None
        self._watchers: list[ListWatch] = []
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        self._api = client.ApiClient(cfg)
        self._core = client.CoreV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)

        self._worker = threading.Thread(target=self._work, name="sim-cloneset", daemon=True)
        self._worker.start()
        reader = ApiReader(load_credentials(str(self.kubeconfig)))
        clonesets = f"/apis/{CLONESET_GROUP}/{CLONESET_VERSION}/{CLONESET_PLURAL}"
        self._watchers = [
            ListWatch("sim-cloneset-clonesets", reader, clonesets,
                      EachObject(self._on_cloneset, isolated=True), policy=WATCH_POLICY),
            ListWatch("sim-cloneset-pods", reader, "/api/v1/pods",
                      EachObject(self._on_pod, isolated=True), policy=WATCH_POLICY),
        ]
        for watcher in self._watchers:
            watcher.start()
        for watcher in self._watchers:
            watcher.synced.wait(10)
        log.info("simulated CloneSet controller running")

    def stop(self) -> None:
        self._stopping.set()
        for watcher in self._watchers:
            watcher.stop()
        with self._cond:
            self._cond.notify_all()
        if self._worker:
            self._worker.join(5)
        if self._api is not None:
            self._api.close()

    def _enqueue(self, key: tuple[str, str]) -> None:
        with self._cond:
            if key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
                self._cond.notify()

    def _on_cloneset(self, event: str, obj: dict[str, Any]) -> None:
        if event != "DELETED":
            self._enqueue((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_pod(self, event: str, pod: dict[str, Any]) -> None:
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == CLONESET_KIND and ref.get("apiVersion", "").startswith(
                CLONESET_GROUP + "/"
            ):
                self._enqueue((pod["metadata"]["namespace"], ref["name"]))

    def _work(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                if not self._queue:
                    self._cond.wait(1.0)
                    continue
                key = self._queue.pop(0)
                self._queued.discard(key)
            try:
                self._reconcile(*key)
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("simulated CloneSet controller: %s/%s failed; retrying", *key)
                self._stopping.wait(0.5)
                self._enqueue(key)

    def _reconcile(self, namespace: str, name: str) -> None:
        from kubernetes.client.rest import ApiException

        try:
            resp = self._custom.get_namespaced_custom_object(
                CLONESET_GROUP,
                CLONESET_VERSION,
                namespace,
                CLONESET_PLURAL,
                name,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
                return  # deleted: the garbage collector removes its pods
            raise
        cloneset = json.loads(resp.data)
        if cloneset["metadata"].get("deletionTimestamp"):
            return
        spec = cloneset.get("spec", {})
        replicas = int(spec.get("replicas", 1))
        strategy = spec.get("updateStrategy") or {}
        revision = revision_name(cloneset)
        shape = template_shape(spec.get("template", {}))
        selector = spec.get("selector", {}).get("matchLabels", {})
        listed = self._core.list_namespaced_pod(
            namespace,
            label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            _preload_content=False,
        )
        raw_pods = [
            p for p in json.loads(listed.data)["items"] if owned_by(p, cloneset["metadata"]["uid"])
        ]
        views = [pod_view(p) for p in raw_pods]
        plan = plan_cloneset(
            replicas,
            scaled_partition(strategy.get("partition"), replicas),
            revision,
            shape,
            views,
            paused=bool(strategy.get("paused")),
        )
        for _ in range(plan.create):
            self._core.create_namespaced_pod(
                namespace, new_pod(cloneset, revision, shape), _preload_content=False
            )
        for pod_name in (*plan.delete, *plan.recreate):
            self._delete_pod(namespace, pod_name)
        patch = in_place_patch(cloneset, revision)
        for pod_name in plan.update_in_place:
            self._core.patch_namespaced_pod(pod_name, namespace, patch, _preload_content=False)
        status = cloneset_status(cloneset, views, revision)
        if any(cloneset.get("status", {}).get(k) != v for k, v in status.items()):
            self._custom.patch_namespaced_custom_object_status(
                CLONESET_GROUP,
                CLONESET_VERSION,
                namespace,
                CLONESET_PLURAL,
                name,
                {"status": status},
                _preload_content=False,
            )

    def _delete_pod(self, namespace: str, name: str) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self._core.delete_namespaced_pod(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise
