"""LeaderElector: one active controller replica, elected on a coordination.k8s.io/v1 Lease.

Holds the acquire / renew / release protocol (a compare-and-swap on the Lease's
resourceVersion; expiry judged by the local clock from when this process last saw the
record change, as client-go does), ``micro_time`` (the Lease's timestamp format) and
``default_identity``. It must not start threads of its own: the loop runs ``keep``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        expired = now - self._observed_at > float(spec.get("leaseDurationSeconds")
                                                  or self.lease_seconds)
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
        """Block until this process leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    log.info("leading as %s (lease %s/%s)", self.identity, self.namespace,
                             self.name)
                    return True
            except ApiError as exc:
                log.warning("lease: %s", exc)
            stop.wait(self.retry_seconds * random.uniform(1.0, 1.2))
        return False

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

    def release(self) -> None:
        """Hand the lease over at once on a clean shutdown."""
        try:
            lease = self.api.get(self._path())
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = dict(lease["spec"])
                spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time())
                self.api.request("PUT", self._path(), {**lease, "spec": spec})
        except ApiError as exc:
            log.warning("lease release: %s", exc)
