"""ListWatch: the one list-then-watch engine, for the webhook's state cache, the controller
and the local cluster's simulators alike.

Holds ListWatch (list one resource, hand the listing to a handler, then watch from the
listing's resourceVersion; bookmarks only move that version; a 410 Gone lists again at
once, any other failure lists again after an exponential backoff; ``stop()`` ends a read
waiting for the next event), the small WatchHandler interface it calls, EachObject (a
handler made of one per-object callback) and WatchPolicy, the few knobs its users differ
in. It must not decide anything about the objects it sees: that is the handler's job.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from webhook.core.errors import ApiError

log = logging.getLogger("oam_rollout.kube")

# A watch that ends sooner than this (a proxy, a misbehaving server) is followed by a short
# pause, so that a stream which ends at once cannot turn the loop into a busy one.
SHORT_WATCH_SECONDS = 1.0
SHORT_WATCH_PAUSE = 0.5


class WatchApi(Protocol):
    """The two calls the engine makes (webhook.kube.reader.ApiReader has both)."""

    def get_json(
        self, path: str, query: Mapping[str, str] | None = None, read_timeout: float | None = None
    ) -> Any: ...

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int, selector: str | None = None
    ) -> Iterable[dict[str, Any]]: ...


class WatchHandler(Protocol):
    """What a ListWatch tells its owner. Exceptions raised here count as a failed watch:
    the engine lists again after its backoff (EachObject can isolate them instead)."""

    def listed(self, items: list[dict[str, Any]]) -> None:
        """Every object there is: the first listing, and again after each relist."""

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        """One event: ``kind`` is ADDED, MODIFIED or DELETED."""


class EachObject:
    """A WatchHandler made of one ``callback(kind, obj)``; listed objects come as ``SYNC``.

    ``isolated``: a callback that raises on one object is logged and the watch goes on
    (the object's next event retries it), instead of failing the watch.
    """

    def __init__(
        self, callback: Callable[[str, dict[str, Any]], None], *, isolated: bool = False
    ) -> None:
        self._callback = callback
        self._isolated = isolated

    def listed(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.changed("SYNC", item)

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        if not self._isolated:
            self._callback(kind, obj)
            return
        try:
            self._callback(kind, obj)
        except Exception:
            meta = _meta(obj)
            log.exception("%s of %s/%s failed", kind, meta.get("namespace"), meta.get("name"))


@dataclass(frozen=True)
class WatchPolicy:
    """How one ListWatch paces itself."""

    # The server ends each watch after this long.
    watch_seconds: int = 240
    # Each watch is up to this fraction shorter, so that replicas' relists spread out.
    jitter: float = 0.0
    # True: list again whenever a watch ends (a periodic resync); False: only after a break.
    relist_after_watch: bool = False
    # Pauses after failures: first, doubling up to the most.
    backoff_first: float = 0.2
    backoff_max: float = 5.0
    # Not None: a 404 means the kind is not installed; that counts as synced (there is
    # nothing to see) and the engine looks again after this many seconds.
    absent_retry: float | None = None
    # The listing's read timeout in seconds (None: the client's default).
    list_timeout: float | None = None


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class ListWatch:
    """Keeps one handler in step with one resource until ``stop()``.

    ``live`` is true from a successful listing until the next failure; ``synced`` is set
    once the first listing reached the handler and stays set; ``error`` is the last
    failure while not live. Run it in its own thread with ``start()``, or call ``run()``
    from a thread of the caller's (its stop event may then be shared with other work).
    """

    def __init__(
        self,
        name: str,
        api: WatchApi,
        path: str,
        handler: WatchHandler,
        *,
        selector: str | None = None,
        policy: WatchPolicy | None = None,
        stop: threading.Event | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        """name: how log lines and the thread name it; logger: where failures are told."""
        self.name = name
        self.path = path
        self.selector = selector
        self.policy = policy or WatchPolicy()
        self.synced = threading.Event()
        self.error: str | None = None
        self._api = api
        self._handler = handler
        self._stop = stop if stop is not None else threading.Event()
        self._log = logger or log
        self._live = False
        self._stream: Iterable[dict[str, Any]] | None = None
        self._thread: threading.Thread | None = None

    @property
    def live(self) -> bool:
        """Listed, and watching without a failure since."""
        return self._live and not self._stop.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        thread = threading.Thread(target=self.run, name=f"watch {self.name}", daemon=True)
        thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop, end a pending read at once, and wait up to ``timeout`` s for the thread."""
        self._stop.set()
        self._live = False
        stream = self._stream
        interrupt = getattr(stream, "interrupt", None)
        if callable(interrupt):
            with contextlib.suppress(Exception):
                interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run(self) -> None:
        """List and watch until stopped; never raises."""
        self._thread = threading.current_thread()
        failures = 0
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._list()
                    failures = 0
                began = time.monotonic()
                version = self._watch(version)
                if self.policy.relist_after_watch:
                    version = ""
                if time.monotonic() - began < SHORT_WATCH_SECONDS:
                    self._stop.wait(SHORT_WATCH_PAUSE)
            except _Gone:
                version = ""
            except Exception as exc:
                version = ""
                if self._stop.is_set():
                    break
                if self._absent(exc):
                    continue
                failures += 1
                self._fail(exc)
                pause = self.policy.backoff_first * 2 ** (failures - 1)
                self._stop.wait(min(pause, self.policy.backoff_max))
        self._live = False

    def _absent(self, exc: Exception) -> bool:
        """A 404 for a kind that may not be installed: synced, look again later."""
        retry = self.policy.absent_retry
        if retry is None or not isinstance(exc, ApiError) or exc.status != 404:
            return False
        self._live = False
        self.synced.set()
        self._stop.wait(retry)
        return True

    def _fail(self, exc: Exception) -> None:
        # One line per new failure: a cluster that stays down must not flood the log.
        told = self._live or self.error != str(exc)
        self._live, self.error = False, str(exc)
        if not told:
            return
        if isinstance(exc, ApiError):
            self._log.warning("%s: %s", self.name, exc)
        else:  # a bug, in a handler say: show where, and keep watching
            self._log.exception("%s: %s", self.name, exc)

    def _list(self) -> str:
        query = {"labelSelector": self.selector} if self.selector else None
        listing = self._api.get_json(self.path, query, self.policy.list_timeout)
        if not isinstance(listing, dict) or not isinstance(listing.get("items"), list):
            raise ApiError("GET", self.path, 0, "the API answered something that is not a list")
        self._handler.listed([item for item in listing["items"] if isinstance(item, dict)])
        self._live, self.error = True, None
        self.synced.set()
        return str(_meta(listing).get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        """One watch request; returns the version to resume from."""
        seconds = self.policy.watch_seconds
        if self.policy.jitter:
            seconds = int(seconds * random.uniform(1.0 - self.policy.jitter, 1.0))
        stream = self._api.watch(self.path, version, max(5, seconds), self.selector)
        self._stream = stream
        try:
            for event in stream:
                if self._stop.is_set():
                    break
                kind, obj = event.get("type"), event.get("object")
                if not isinstance(obj, dict):
                    continue
                if kind == "ERROR":
                    code = int(obj.get("code") or 0)
                    if code == 410:
                        raise _Gone
                    raise ApiError("WATCH", self.path, code, str(obj.get("message", obj)))
                version = str(_meta(obj).get("resourceVersion", version))
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._handler.changed(kind, obj)
        finally:
            self._stream = None
        return version


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}
