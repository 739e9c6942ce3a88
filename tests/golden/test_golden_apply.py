"""The API server accepts every golden render as it is (server-side dry run).

Runs against the session's local control plane, which has the Rollout and CloneSet
CRDs installed, so built-in and custom kinds both meet their real schemas and
admission chain. A dry run stores nothing, so no controller acts on these objects.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fixtures.apps import WALKTHROUGH
from tests.fixtures.cluster import ToolRunner

pytestmark = pytest.mark.cluster

HERE = Path(__file__).resolve().parent
CASES = sorted(p.name for p in HERE.iterdir() if (p / "expected.yaml").is_file())


def test_every_golden_render_is_accepted_by_the_api_server(
    kubectl: ToolRunner, namespace: str
) -> None:
    accepted: dict[str, list[str]] = {}
    expected: dict[str, list[str]] = {}
    for case in CASES:
        text = (HERE / case / "expected.yaml").read_text()
        done = kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-o", "name", "-f", "-", input=text
        )
        accepted[case] = done.stdout.split()
        expected[case] = [
            f"{doc['kind'].lower()}.{doc['apiVersion'].split('/')[0]}/{doc['metadata']['name']}"
            if "/" in doc["apiVersion"]
            else f"{doc['kind'].lower()}/{doc['metadata']['name']}"
            for doc in yaml.safe_load_all(text)
        ]
    assert list(accepted) == list(WALKTHROUGH)  # no step left out
    assert accepted == expected
