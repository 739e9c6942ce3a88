"""The webhook's state cache on a real kube-apiserver: listings read page by page (continue
tokens), and scoped reads that hold just what one Application's review looks at."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.polling import eventually
from webhook.admission import statecache
from webhook.admission.judge import ReadScope
from webhook.kube.reader import load_api_reader, read_observed_state

pytestmark = pytest.mark.cluster


def revisions(component: str, count: int, owner: str | None = None) -> list[dict[str, Any]]:
    labels = {"controller.oam.dev/component": component,
              "app.oam.dev/component-revision-hash": "h"}  # fmt: skip
    return [
        {"apiVersion": "apps/v1", "kind": "ControllerRevision",
         "metadata": {"name": f"{component}-v{n}", "labels": labels}, "revision": n,
         "data": {"name": component, "type": "webservice", "properties": {"image": f"i:{n}"}}}
        for n in range(1, count + 1)
    ]  # fmt: skip


def test_a_listing_in_pages_reads_what_one_listing_reads_and_scopes_narrow_it(
    cluster: Any, kubectl: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 2: the 7 revisions take 4 pages, joined by the apiserver's continue tokens.
    monkeypatch.setattr(statecache, "LIST_PAGE", 2)
    docs = revisions("web", 4) + revisions("db", 3)
    kubectl("apply", "-n", namespace, "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
    reader = load_api_reader(str(cluster.kubeconfig))
    queries: list[dict[str, str]] = []

    class Recording:
        """The reader, with the query of every listing request written down."""

        def get_json(self, path: str, query: Any = None, read_timeout: Any = None) -> Any:
            queries.append(dict(query or {}))
            return reader.get_json(path, query, read_timeout)

        def watch(self, *args: Any) -> Any:
            return reader.watch(*args)

    cache = statecache.StateCache(Recording())
    cache.start()
    try:
        eventually(lambda: cache.live, timeout=10, interval=0.05, what="the cache's first sync")
        assert sum("continue" in q for q in queries) >= 3
        direct = read_observed_state(reader, namespace, "app")
        assert cache.read(namespace, "app") == direct
        scoped = cache.read(namespace, "app", scope=ReadScope(frozenset({"db"}), frozenset()))
        assert scoped is not None
        assert [r.name for r in scoped.revisions] == ["db-v1", "db-v2", "db-v3"]
        assert [r for r in direct.revisions if r.component == "db"] == list(scoped.revisions)
        # Watched after the paged listing: a new revision reaches the index.
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(revisions("db", 4)[-1]))
        eventually(
            lambda: [r.name for r in cache.read(  # type: ignore[union-attr]
                namespace, "app", scope=ReadScope(frozenset({"db"}), frozenset())).revisions],
            equals=["db-v1", "db-v2", "db-v3", "db-v4"], timeout=10, interval=0.05,
            what="the watched revision",
        )
    finally:
        cache.stop()
