"""The spec's whole scenario on the local control plane, webhook and controller running.

Every step applies the spec's YAML with kubectl and then compares the spec's kubectl views
(rollout, Deployments or CloneSet by label, ControllerRevisions, app) column by column,
AGE aside. During the upgrades a watcher samples Ready pods of old + new revisions and
checks they stay within targetSize -/+ the current batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.controller import ControllerProcess, ReadySampler
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

Table = list[dict[str, str]]

APP = "rollout-trait-test"
OWNER = f"application.core.oam.dev/{APP}"

FIRST_DEPLOY = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      # 设置组件版本为 express-server-v1
      externalRevision: express-server-v1
      properties:
        image: stefanprodan/podinfo:4.0.3
      traits:
        - type: rollout
          # 缺省设置 targetRevision 直接指向最新的组件版本也就是 express-server-v1
          properties:
            # 设置部署5个副本
            targetSize: 5
            # 分两批发布，上一批次副本全部就绪之后部署下一批次
            rolloutBatches:
              - replicas: 2
              - replicas: 3
"""

UPGRADE_FIRST_BATCH = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      # 设置更新后的组件版本为 express-server-v2
      externalRevision: express-server-v2
      properties:
        image: stefanprodan/podinfo:5.0.2
      traits:
        - type: rollout
          properties:
            targetSize: 5
            # 只灰度发布第一批次的副本
            batchPartition: 0
            # 分两批灰度发布
            rolloutBatches:
              - replicas: 2
              - replicas: 3
"""

UPGRADE_ALL = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      externalRevision: express-server-v2
      properties:
        image: stefanprodan/podinfo:5.0.2
      traits:
        - type: rollout
          properties:
            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
"""

ROLLBACK = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      externalRevision: express-server-v2
      properties:
        image: stefanprodan/podinfo:5.0.2
      traits:
        - type: rollout
          properties:
            # 设置目标版本为之前的组件版本来进行回滚
            targetRevision: express-server-v1
            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
"""

SCALE_UP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      externalRevision: express-server-v2
      properties:
        image: stefanprodan/podinfo:5.0.2
      traits:
        - type: rollout
          properties:
            targetRevision: express-server-v1
            targetSize: 7
            # 刚才工作负载有5个副本，分两批扩容，第一批扩容1个，第二批再扩容1个
            rolloutBatches:
              - replicas: 1
              - replicas: 1
"""

SCALE_DOWN = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      externalRevision: express-server-v2
      properties:
        image: stefanprodan/podinfo:5.0.2
      traits:
        - type: rollout
          properties:
            targetRevision: express-server-v1
            # 刚才工作负载有7个，分两批缩容，第一批缩减1个，第二批缩减3个。
            targetSize: 3
            rolloutBatches:
              - replicas: 1
              - replicas: 3
"""

CLONESET_FIRST = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test-cloneset
spec:
  components:
    - name: cloneset-server
      type: cloneset
      externalRevision: cloneset-server-v1
      properties:
        image: stefanprodan/podinfo:4.0.3
      traits:
        - type: rollout
          properties:
            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
"""

CLONESET_UPGRADE = CLONESET_FIRST.replace("cloneset-server-v1", "cloneset-server-v2").replace(
    "podinfo:4.0.3", "podinfo:5.0.2")


def rollout_row(target: int, upgraded: int, ready: int, batch: str, rolling: str,
                name: str = "express-server") -> Table:
    return [{"NAME": name, "TARGET": str(target), "UPGRADED": str(upgraded),
             "READY": str(ready), "BATCH-STATE": batch, "ROLLING-STATE": rolling}]


def deploys(*rows: tuple[str, int]) -> Table:
    return [{"NAME": name, "READY": f"{n}/{n}", "UP-TO-DATE": str(n), "AVAILABLE": str(n)}
            for name, n in rows]


def revisions(*rows: tuple[str, int], owner: str = OWNER) -> Table:
    return [{"NAME": name, "CONTROLLER": owner, "REVISION": str(n)} for name, n in rows]


def app_row(name: str, component: str, type_: str) -> Table:
    return [{"NAME": name, "COMPONENT": component, "TYPE": type_, "PHASE": "running",
             "HEALTHY": "true", "STATUS": ""}]


SUCCEED = ("batchReady", "rolloutSucceed")

# (YAML, sampled for the invariant, rollout view, deployments view, revisions view)
SPEC_STEPS = [
    pytest.param(FIRST_DEPLOY, False, rollout_row(5, 5, 5, *SUCCEED),
                 deploys(("express-server-v1", 5)), revisions(("express-server-v1", 1)),
                 id="first deploy"),
    pytest.param(UPGRADE_FIRST_BATCH, True,
                 rollout_row(5, 2, 2, "batchReady", "rollingInBatches"),
                 deploys(("express-server-v1", 3), ("express-server-v2", 2)),
                 revisions(("express-server-v1", 1), ("express-server-v2", 2)),
                 id="upgrade the first batch only"),
    pytest.param(UPGRADE_ALL, True, rollout_row(5, 5, 5, *SUCCEED),
                 deploys(("express-server-v2", 5)),
                 revisions(("express-server-v1", 1), ("express-server-v2", 2)),
                 id="remove the partition"),
    pytest.param(ROLLBACK, True, rollout_row(5, 5, 5, *SUCCEED),
                 deploys(("express-server-v1", 5)),
                 revisions(("express-server-v1", 1), ("express-server-v2", 2)),
                 id="roll back to v1"),
    pytest.param(SCALE_UP, False, rollout_row(7, 7, 7, *SUCCEED),
                 deploys(("express-server-v1", 7)),
                 revisions(("express-server-v1", 1), ("express-server-v2", 2)),
                 id="scale up to 7"),
    pytest.param(SCALE_DOWN, False, rollout_row(3, 3, 3, *SUCCEED),
                 deploys(("express-server-v1", 3)),
                 revisions(("express-server-v1", 1), ("express-server-v2", 2)),
                 id="scale down to 3"),
]


def parse_table(text: str) -> Table:
    """kubectl's column output as rows of {HEADER: cell}, cells cut at header positions."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0]
    names = header.split()
    starts = []
    pos = 0
    for name in names:
        pos = header.index(name, pos)
        starts.append(pos)
        pos += len(name)
    rows = []
    for line in lines[1:]:
        cells = {}
        for i, name in enumerate(names):
            end = starts[i + 1] if i + 1 < len(names) else len(line)
            cells[name] = line[starts[i]:end].strip()
        rows.append(cells)
    return rows


def without_age(rows: Table) -> Table:
    return [{k: v for k, v in row.items() if k != "AGE"} for row in rows]


def view(kubectl: Any, namespace: str, *args: str) -> Table:
    """A `kubectl get` table; an object not created yet reads as no rows (polls go on)."""
    return without_age(parse_table(kubectl("get", *args, "-n", namespace,
                                           "--ignore-not-found").stdout))


def wait_for(views: Callable[[], dict[str, Table]], expected: dict[str, Table],
             timeout: float = 60.0) -> dict[str, Table]:
    """Poll the kubectl views until they all read as expected (or time out); return them."""
    deadline = time.monotonic() + timeout
    seen = views()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = views()
    return seen


def test_the_spec_scenario_reads_as_the_spec_prints_it(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server  # installed: every apply of the scenario goes through admission
    component = "express-server"

    def views() -> dict[str, Table]:
        return {
            "rollout": view(kubectl, namespace, "rollout", component),
            "deploy": view(kubectl, namespace, "deploy", "-l",
                           f"app.oam.dev/component={component}"),
            "revisions": view(kubectl, namespace, "controllerRevision", "-l",
                              f"controller.oam.dev/component={component}"),
            "app": view(kubectl, namespace, "app", APP),
        }

    with ReadySampler(cluster.kubeconfig, namespace, component) as sampler:
        for step in SPEC_STEPS:
            yaml_text, sampled, rollout, deployments, revs = step.values
            sampler.active = bool(sampled)
            kubectl("apply", "-n", namespace, "-f", "-", input=str(yaml_text))
            expected = {"rollout": rollout, "deploy": deployments, "revisions": revs,
                        "app": app_row(APP, component, "webservice")}
            seen = wait_for(views, expected)  # type: ignore[arg-type]
            assert seen == expected, f"step {step.id}; controller log:\n{controller_process.tail()}"
        sampler.active = False
        assert sampler.samples, "the sampler saw no pod during the upgrades"
        assert sampler.violations() == []


def test_the_spec_cloneset_is_rolled_in_place_under_the_component_name(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    app, component = "rollout-trait-test-cloneset", "cloneset-server"
    owner = f"application.core.oam.dev/{app}"

    def views() -> dict[str, Table]:
        return {
            "app": view(kubectl, namespace, "app", app),
            "revisions": view(kubectl, namespace, "controllerRevision", "-l",
                              f"controller.oam.dev/component={component}"),
            "rollout": view(kubectl, namespace, "rollout", component),
            "cloneset": view(kubectl, namespace, "cloneset", "-l",
                             f"app.oam.dev/component={component}"),
        }

    def image() -> str:
        return str(kubectl("get", "cloneset", component, "-n", namespace,
                           "-o=jsonpath={.spec.template.spec.containers[0].image}").stdout)

    cloneset_row = [{"NAME": component, "DESIRED": "5", "UPDATED": "5", "UPDATED_READY": "5",
                     "READY": "5", "TOTAL": "5"}]
    for yaml_text, revs, want_image in [
        (CLONESET_FIRST, revisions(("cloneset-server-v1", 1), owner=owner),
         "stefanprodan/podinfo:4.0.3"),
        (CLONESET_UPGRADE, revisions(("cloneset-server-v1", 1), ("cloneset-server-v2", 2),
                                     owner=owner), "stefanprodan/podinfo:5.0.2"),
    ]:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml_text)
        expected = {"app": app_row(app, component, "cloneset"), "revisions": revs,
                    "rollout": rollout_row(5, 5, 5, *SUCCEED, name=component),
                    "cloneset": cloneset_row}
        seen = wait_for(views, expected)
        assert seen == expected, controller_process.tail()
        assert image() == want_image
