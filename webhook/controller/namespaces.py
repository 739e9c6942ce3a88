"""The namespaces a controller with ``--namespace-selector`` acts in, kept current by a watch.

Holds NamespaceIndex (the labels of each namespace the watch shows, by name: the live
``namespace_labels`` view webhook.core.scope.Scope judges Applications with; safe to read
from every worker while the watch writes it) and NamespaceFeed (the WatchHandler of the
Namespace ListWatch, which lists and watches with the selector as its labelSelector, so
the API itself filters; a namespace that stops matching arrives as a DELETED event).
It tells its owner which namespaces came to be selected (``entered``: their Applications
are judged again and queued) and which stopped being selected (``left``: acted on no more;
nothing of theirs is deleted). The first listing tells nothing: the Applications' own
first listing, which follows it, judges them all. It must not decide which Applications
are ours (core.scope does) nor read the API itself (the ListWatch does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from webhook.core.scope import Scope
from webhook.kube.client import Resource

NAMESPACES = Resource("", "v1", "namespaces")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = _meta(obj).get("labels")
    return ({str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping)
            else {})


class NamespaceIndex(Mapping[str, Mapping[str, str]]):
    """Namespace name -> its labels, for the namespaces the watch shows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, dict[str, str]] = {}

    def __getitem__(self, name: str) -> Mapping[str, str]:
        with self._lock:
            return self._labels[name]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._labels))

    def __len__(self) -> int:
        with self._lock:
            return len(self._labels)

    def put(self, name: str, labels: dict[str, str]) -> None:
        with self._lock:
            self._labels[name] = labels

    def drop(self, name: str) -> None:
        with self._lock:
            self._labels.pop(name, None)


class NamespaceFeed:
    """The Namespace watch's handler: keeps ``scope.namespace_labels`` (a NamespaceIndex)
    current and tells ``entered`` / ``left`` each namespace whose selection changed."""

    def __init__(self, scope: Scope, index: NamespaceIndex,
                 entered: Callable[[str], None], left: Callable[[str], None]) -> None:
        self.scope = scope
        self.index = index
        self.entered = entered
        self.left = left
        self._first = True

    def listed(self, items: list[dict[str, Any]]) -> None:
        present = {str(_meta(o).get("name") or ""): _labels(o) for o in items}
        for name in [n for n in self.index if n not in present]:
            self._set(name, None)
        for name, labels in present.items():
            self._set(name, labels)
        self._first = False

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        name = str(_meta(obj).get("name") or "")
        self._set(name, None if kind == "DELETED" else _labels(obj))

    def _set(self, name: str, labels: dict[str, str] | None) -> None:
        if not name:
            return
        was = self.scope.selects_namespace(name)
        if labels is None:
            self.index.drop(name)
        else:
            self.index.put(name, labels)
        now = self.scope.selects_namespace(name)
        if was and not now:
            self.left(name)
        elif now and not was and not self._first:
            try:
                self.entered(name)
            except Exception:
                # Not judged again: forget it, so the relist that follows this failed
                # watch sees it enter again and retries.
                self.index.drop(name)
                raise
