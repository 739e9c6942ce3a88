"""LeaderElector: one active controller replica, elected on a coordination.k8s.io/v1 Lease.

Holds the acquire / renew / release protocol (a compare-and-swap on the Lease's
resourceVersion; expiry judged by the local clock from when this process last saw the
record change, as client-go does), ``micro_time`` (the Lease's timestamp format) and
``default_identity``. A stand-by waits on a watch of the Lease rather than a timer, so it
takes a released lease at once. It must not start threads of its own: the loop runs
``keep``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from webhook.core.errors import ApiError
from webhook.kube.client import LEASES, KubeApi

log = logging.getLogger("oam_rollout.controller")


def default_identity() -> str:
    """A replica's identity when none is given: unique per host and process."""
    return f"{socket.gethostname()}_{os.getpid()}"


def micro_time(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    """Holds a coordination.k8s.io/v1 Lease; a holder that misses its renew deadline stops.

    Expiry is judged by the local clock from when this process last saw the lease record
    change (as client-go does), so clock skew between replicas does not matter.
    """

    api: KubeApi
    namespace: str
    name: str = "oam-rollout-controller"
    identity: str = field(default_factory=default_identity)
    lease_seconds: float = 15.0
    renew_seconds: float = 10.0  # renew deadline: give up leadership after this long
    retry_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _observed: tuple[str, str] = ("", "")
    _observed_at: float = 0.0
    _observed_term: float = 0.0  # the leaseDurationSeconds of the record last seen
    _version: str = ""  # the Lease's resourceVersion as last read: where a watch starts
    _stream: Any = None  # the watch a stand-by is waiting on, for interrupt()
    _watch_failed: bool = False
    last_attempt: float | None = None  # clock() of the last try, for the liveness probe

    def _path(self) -> str:
        return LEASES.path(self.namespace, self.name)

    def try_acquire_or_renew(self) -> bool:
        now = self.clock()
        self.last_attempt = now
        lease = self.api.get(self._path())
        spec_new = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_seconds)),
            "renewTime": micro_time(),
        }
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {**spec_new, "acquireTime": micro_time(), "leaseTransitions": 0}}
            try:
                self.api.create(LEASES.path(self.namespace), body)
            except ApiError as exc:
                if exc.conflict:
                    return False
                raise
            return True
        self._version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        self._observed_term = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        expired = now - self._observed_at > self._observed_term
        if holder and holder != self.identity and not expired:
            return False
        new_spec = dict(spec)
        new_spec.update(spec_new)
        if holder != self.identity:
            new_spec["acquireTime"] = micro_time()
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        body = {**lease, "spec": new_spec}
        try:
            self.api.request("PUT", self._path(), body)  # resourceVersion in body: a CAS
        except ApiError as exc:
            if exc.conflict:
                return False
            raise
        self._observed = (self.identity, new_spec["renewTime"])
        self._observed_at = now
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this process leads (True) or ``stop`` is set (False).

        Between tries it waits on a watch of the Lease: a holder that releases it on its
        way out hands it to this stand-by within a round trip, before a replica that is
        only starting (the Deployment's replacement for the pod that released it) can try
        for it; a retry timer would leave that race to chance.
        """
        told = False
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    log.info("leading as %s (lease %s/%s)", self.identity, self.namespace,
                             self.name)
                    return True
                if not told:
                    log.info("standing by: %s holds the lease %s/%s", self._observed[0],
                             self.namespace, self.name)
                    told = True
                if self._await_change(stop):
                    continue
            except ApiError as exc:
                log.warning("lease: %s", exc)
            stop.wait(self.retry_seconds * random.uniform(1.0, 1.2))
        return False

    def _await_change(self, stop: threading.Event) -> bool:
        """Watch the Lease from the version last read until it changes, the holder's term
        as last seen could have run out, or ``stop``; False when it cannot be watched
        (then the caller waits a retry period)."""
        left = self._observed_at + self._observed_term - self.clock()
        if not self._version or left <= 0:
            return False
        # Whole seconds (the API's timeoutSeconds), never past our own term, so a holder
        # with a longer one is still looked at (and the liveness probe sees tries).
        seconds = max(1, math.ceil(min(left, self.lease_seconds)))
        try:
            stream = self.api.watch(LEASES.path(self.namespace), self._version, seconds,
                                    field_selector=f"metadata.name={self.name}")
        except ApiError as exc:
            if not self._watch_failed:
                log.warning("lease: cannot watch it (%s); trying every %.0f s instead", exc,
                            self.retry_seconds)
                self._watch_failed = True
            return False
        self._stream = stream
        try:
            if stop.is_set():  # stopped before interrupt() could see this stream
                return True
            for event in stream:
                kind = event.get("type")
                meta = (event.get("object") or {}).get("metadata") or {}
                if kind == "ERROR" or (kind != "BOOKMARK" and meta.get("name") == self.name):
                    return True  # a change, or a version too old: read it again
        except ApiError:
            return False
        finally:
            self._stream = None
            stream.interrupt()  # done with it: never back into the pool half read
        return True

    def interrupt(self) -> None:
        """End a stand-by's wait at once (a signal handler or another thread, after
        setting the ``stop`` given to ``acquire``)."""
        stream = self._stream
        if stream is not None:
            stream.interrupt()

    def keep(self, stop: threading.Event, lost: Callable[[], None]) -> None:
        """Renew until ``stop``; call ``lost`` when a renewal deadline passes."""
        last_ok = self.clock()
        while not stop.wait(self.retry_seconds):
            try:
                if self.try_acquire_or_renew():
                    last_ok = self.clock()
                    continue
            except ApiError as exc:
                log.warning("lease renew: %s", exc)
            if self.clock() - last_ok > self.renew_seconds:
                log.error("lost the lease %s/%s", self.namespace, self.name)
                lost()
                return

    def release(self, attempts: int = 3) -> None:
        """Hand the lease over at once on a clean shutdown, once ``keep`` has stopped: the
        holder cleared, a one-second term. A write that lands between our read and ours
        (a renewal that was under way) is read again: giving up there would leave the
        stand-by waiting out the whole term."""
        for _ in range(attempts):
            try:
                lease = self.api.get(self._path())
                if not lease or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                    return
                spec = dict(lease["spec"])
                spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time())
                self.api.request("PUT", self._path(), {**lease, "spec": spec})
                log.info("released the lease %s/%s", self.namespace, self.name)
                return
            except ApiError as exc:
                if not exc.conflict:
                    log.warning("lease release: %s", exc)
                    return
        log.warning("lease release: the lease %s/%s kept changing; it runs out in its term",
                    self.namespace, self.name)
