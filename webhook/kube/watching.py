"""ResourceWatcher: list + watch one resource type in a thread, handing raw dicts to a callback.

Holds the list/watch/relist loop the simulations share (resourceVersion bookkeeping,
410 Gone, reconnect after errors) and a stop() that unblocks a pending read at once.
It must not decide anything about the objects it sees: that is the handler's job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# handler(event_type, obj): event_type is ADDED / MODIFIED / DELETED (SYNC for relisted items).
Handler = Callable[[str, dict[str, Any]], None]


class ResourceWatcher:
    """Calls handler for every object on start and every change after, until stop()."""

    def __init__(self, name: str, list_func: Callable[..., Any], handler: Handler) -> None:
        """list_func: a kubernetes client list call (e.g. CoreV1Api.list_pod_for_all_namespaces)
        accepting watch/resource_version/_preload_content keywords."""
        self.name = name
        self._list = list_func
        self._handler = handler
        self._stop = threading.Event()
        self._resp: Any = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)
        self.synced = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            # urllib3 2.x: shutdown() wakes a reader blocked in another thread.
            with contextlib.suppress(Exception):
                resp.shutdown()
            with contextlib.suppress(Exception):
                resp.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _dispatch(self, kind: str, obj: dict[str, Any]) -> None:
        try:
            self._handler(kind, obj)
        except Exception:
            # One bad object must not end the simulation; the next event retries.
            meta = obj.get("metadata", {})
            log.exception(
                "%s: handler failed on %s/%s", self.name, meta.get("namespace"), meta.get("name")
            )

    def _relist(self) -> str:
        resp = self._list(_preload_content=False)
        body = json.loads(resp.data)
        for item in body.get("items", []):
            self._dispatch("SYNC", item)
        self.synced.set()
        return str(body.get("metadata", {}).get("resourceVersion", ""))

    def _run(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._relist()
                version = self._watch(version)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.debug("%s: watch interrupted (%s); relisting", self.name, exc)
                version = ""
                self._stop.wait(0.5)

    def _watch(self, version: str) -> str:
        """One watch request; returns the version to resume from ("" = relist)."""
        resp = self._list(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=300,
            _preload_content=False,
        )
        self._resp = resp
        try:
            for line in resp:
                if self._stop.is_set():
                    return version
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("type", "")
                obj = event.get("object", {})
                if kind == "ERROR":
                    # 410 Gone (compacted) and friends: start over with a fresh list.
                    return ""
                version = str(obj.get("metadata", {}).get("resourceVersion", version))
                if kind != "BOOKMARK":
                    self._dispatch(kind, obj)
        finally:
            self._resp = None
            with contextlib.suppress(Exception):
                resp.release_conn()
        return version
