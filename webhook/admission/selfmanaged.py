"""``--self-managed-certs``: the webhook keeps its own CA, serving pair and caBundle.

Holds ``SelfManagedCerts``, run by the webhook's gunicorn master (one per pod, never in
the workers): it keeps the TLS material in one Secret, writes the serving pair to local
files the workers' TlsReloader follows (so a rotated certificate is served to the next
connection, no restart), and keeps the trust bundle in every webhook of the named
configurations. Replicas share the Secret without a lock: it is created only if absent
(a 409 means another replica won, and its material is used) and replaced only at the
resourceVersion that was read (a 409 means read again and plan again). A configuration
is patched only at the version it was read at, and after the Secret was read again, so a
replica with a stale view cannot put back an older bundle. Watches on the configurations
re-inject a bundle a sync wiped within a second; a tick every
certplan.check_interval rotates on time and picks up other replicas' rotations.
The decisions are webhook.admission.certplan's, the key material
webhook.admission.selfcerts', the API calls webhook.kube.webhookcerts'. It must not hold
those decisions, must not log key material and must not import Flask.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webhook.admission.certplan import (
    ConfigurationRef,
    Policy,
    Step,
    bundle_matches,
    ca_bundle_patch,
    check_interval,
    next_step,
    summary,
)
from webhook.admission.certs import write_private
from webhook.admission.selfcerts import CERT_KEY, KEY_KEY, Material, carry_out, view_of
from webhook.core.errors import ApiError, InputError, OamRolloutError
from webhook.kube.client import KubeApi
from webhook.kube.watching import ListWatch
from webhook.kube.webhookcerts import (
    create_secret,
    patch_configuration,
    read_configuration,
    read_secret,
    replace_secret,
    watch_configuration,
)

log = logging.getLogger("oam_rollout.certs")

# The Secret carries this label once the webhook made it: a Secret without it is someone
# else's (a helm-mode or hand-made one) and is never overwritten.
MANAGED_LABEL = "rollout.oam.dev/tls"
MANAGED_VALUE = "self-managed"
# Conflicts in a row before a sync gives up until the next tick (replicas racing).
MAX_CONFLICTS = 5
# A full look at the configurations every this many ticks, besides the watches.
RECHECK_TICKS = 10


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SelfManagedCerts:
    """The TLS material of one webhook replica, kept in the Secret ``namespace/name``."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        secret_name: str,
        configurations: tuple[ConfigurationRef, ...],
        policy: Policy,
        out_dir: Path,
        *,
        clock: Callable[[], datetime.datetime] = _utcnow,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.secret_name = secret_name
        self.configurations = configurations
        self.policy = policy
        self.cert_path = out_dir / CERT_KEY
        self.key_path = out_dir / KEY_KEY
        self._out_dir = out_dir
        self._clock = clock
        self._labels = {**(labels or {}), MANAGED_LABEL: MANAGED_VALUE}
        self._served: tuple[bytes, bytes] | None = None
        self._bundle = ""
        self._inject_wanted = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._watches: list[ListWatch] = []
        self._thread: threading.Thread | None = None
        self._last_error = ""

    @property
    def secret(self) -> str:
        return f"{self.namespace}/{self.secret_name}"

    @property
    def ca_bundle_b64(self) -> str:
        """The trust bundle as last read from the Secret."""
        return self._bundle

    # -- the Secret ------------------------------------------------------------------

    def sync(self) -> Material:
        """Read the Secret, create or rotate what the plan asks for, serve the result."""
        for _ in range(MAX_CONFLICTS):
            found = read_secret(self.api, self.namespace, self.secret_name)
            if found is not None and not self._ours(found):
                raise InputError(
                    f"Secret {self.secret} exists but was not made by a self-managed webhook "
                    f"(no label {MANAGED_LABEL}={MANAGED_VALUE}): delete it, or name another "
                    "with --certs-secret"
                )
            material = Material.from_secret_data(found.get("data") if found else None)
            now = self._clock()
            planned, steps = material, list[Step]()
            for _ in range(len(Step)):
                step = next_step(view_of(planned), now, self.policy)
                if step is None:
                    break
                planned, steps = carry_out(planned, step, now, self.policy), [*steps, step]
            if not steps:
                self._serve(material)
                return material
            if found is None:
                if create_secret(self.api, self._body(planned)) is None:
                    log.info("Secret %s was created by another replica; using its CA",
                             self.secret)  # fmt: skip
                    continue
            elif replace_secret(self.api, self._replacement(found, planned)) is None:
                log.info("Secret %s changed meanwhile; reading it again", self.secret)
                continue
            log.info("Secret %s: %s (%s)", self.secret, ", ".join(s.value for s in steps),
                     "; ".join(summary(view_of(planned))))  # fmt: skip
            self._serve(planned)
            return planned
        raise ApiError("PUT", self.secret, 409, "the Secret kept changing under us; retrying")

    def _ours(self, secret: dict[str, Any]) -> bool:
        labels = (secret.get("metadata") or {}).get("labels") or {}
        return bool(labels.get(MANAGED_LABEL) == MANAGED_VALUE)

    def _body(self, material: Material) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.secret_name,
                "namespace": self.namespace,
                "labels": dict(self._labels),
            },
            "type": "kubernetes.io/tls",
            "data": material.secret_data(),
        }

    def _replacement(self, found: dict[str, Any], material: Material) -> dict[str, Any]:
        meta = {k: v for k, v in (found.get("metadata") or {}).items() if k != "managedFields"}
        return {**found, "metadata": meta, "data": material.secret_data()}

    def _serve(self, material: Material) -> None:
        """Write the serving pair for the workers (key first: a reload that falls between
        the two renames fails to load and keeps the previous context)."""
        pair = (material.tls_crt, material.tls_key)
        if pair != self._served:
            self._out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(self.key_path, material.tls_key)
            write_private(self.cert_path, material.tls_crt)
            if self._served is not None:
                log.info("serving a new certificate from Secret %s", self.secret)
            self._served = pair
        if material.ca_bundle_b64 != self._bundle:
            self._bundle = material.ca_bundle_b64
            self._inject_wanted.set()

    # -- the configurations ------------------------------------------------------------

    def inject(self) -> bool:
        """Put the Secret's bundle into every configuration that lacks it; True when none
        is left lacking it (an absent configuration counts as done: its watch tells when it
        comes)."""
        done = True
        for ref in self.configurations:
            done = self._inject_one(ref) and done
        return done

    def _inject_one(self, ref: ConfigurationRef) -> bool:
        for _ in range(MAX_CONFLICTS):
            configuration = read_configuration(self.api, ref.kind, ref.name)
            if configuration is None:
                return True
            # The Secret is read after the configuration: a bundle written before that read
            # is what we patch in, and a later one finds our patch refused (409).
            bundle = self.sync().ca_bundle_b64
            ops = ca_bundle_patch(configuration, bundle)
            if not ops:
                return True
            if patch_configuration(self.api, ref.kind, ref.name, ops) is not None:
                log.info("caBundle of %s set from Secret %s", ref, self.secret)
                return True
        return False

    def _seen(self, ref: ConfigurationRef) -> Callable[[str, dict[str, Any]], None]:
        def changed(kind: str, configuration: dict[str, Any]) -> None:
            if kind != "DELETED" and not bundle_matches(configuration, self._bundle):
                self._inject_wanted.set()
                self._wake.set()

        return changed

    # -- running ----------------------------------------------------------------------

    def start_up(self, timeout: float = 60.0) -> None:
        """Have a serving pair on disk before the server starts (retrying an unreachable
        API for up to ``timeout`` s), then put the bundle into the configurations."""
        deadline = time.monotonic() + timeout
        pause = 0.5
        while True:
            try:
                self.sync()
                break
            except ApiError as exc:
                if time.monotonic() + pause > deadline:
                    reason = f"no TLS material after {timeout:g}s: {exc}"
                    raise ApiError(exc.method, exc.path, exc.status, reason) from exc
                log.warning("Secret %s not readable yet: %s", self.secret, exc)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        try:
            if self.inject():
                self._inject_wanted.clear()
        except OamRolloutError as exc:
            log.warning("caBundle not injected yet: %s", exc)

    def start(self) -> None:
        """Watch the configurations and tick in a daemon thread until ``stop()``."""
        for ref in self.configurations:
            watch = watch_configuration(
                self.api, ref.kind, ref.name, self._seen(ref), stop=self._stop, logger=log
            )
            self._watches.append(watch)
        self._thread = threading.Thread(target=self._run, name="self-managed certs",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for watch in self._watches:
            watch.stop(timeout=2.0)
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        interval = check_interval(self.policy)
        ticks = 0
        while not self._stop.is_set():
            ticks += 1
            # Cleared before the work: a watch event arriving during it wakes the next tick.
            self._wake.clear()
            try:
                self.sync()
                if self._inject_wanted.is_set() or ticks % RECHECK_TICKS == 0:
                    self._inject_wanted.clear()
                    if not self.inject():
                        self._inject_wanted.set()
                self._last_error = ""
            except OamRolloutError as exc:
                self._inject_wanted.set()
                if str(exc) != self._last_error:  # one line per new failure, not per tick
                    log.warning("self-managed certificates: %s", exc)
                    self._last_error = str(exc)
            except Exception:  # a bug: say where, keep the certificates going
                log.exception("self-managed certificates")
            self._wake.wait(interval)
