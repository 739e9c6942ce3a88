"""When the self-managed webhook certificates change, and what the configurations must say.

Holds the pure decisions of ``--self-managed-certs`` over plain data: ``Policy`` (validity,
rotate-before, the hosts; ``parse_duration`` for its flags), the ``CertView`` of what the
Secret holds, ``next_step`` (create, stage a next CA, switch to it, reissue the serving
certificate, prune expired CAs, or nothing), ``ca_bundle_patch`` (the JSON patch that puts
the trust bundle into every webhook of one configuration, or nothing) and
``check_interval``. The rotation keeps admission working throughout: a new CA is first
added to the trust bundle (``stage``) and signs only ``Policy.lead`` later (``switch``),
once the API server trusts it; the old CA stays trusted until it expires, so replicas
still serving a certificate it signed are accepted until they reload. It must not read a
clock, a file or the API, and must not touch key material (webhook.admission.selfcerts
does).
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core.errors import InputError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, flag: str = "duration") -> datetime.timedelta:
    """A Go-style duration (``8760h``, ``90m``, ``1h30m``, ``20s``); InputError otherwise."""
    spec = text.strip()
    parts = _DURATION_PART.findall(spec)
    if not spec or "".join(n + u for n, u in parts) != spec:
        raise InputError(f"{flag} {text!r}: not a duration (use e.g. 8760h, 30m, 20s)")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise InputError(f"{flag} {text!r}: must be longer than zero")
    return datetime.timedelta(seconds=seconds)


def host_key(host: str) -> str:
    """A host as certificates are compared: an IP in its canonical form, a name lower-case."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


@dataclass(frozen=True)
class Policy:
    """How long certificates live, how early they are replaced, and whom they serve.

    ``validity`` applies to each CA and to each serving certificate (which never outlives
    its CA); ``rotate_before`` is how long before its end a certificate is replaced.
    """

    validity: datetime.timedelta
    rotate_before: datetime.timedelta
    hosts: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.hosts:
            raise InputError("--cert-hosts: give at least one host name or IP address")
        if self.rotate_before >= self.validity:
            raise InputError(
                f"--rotate-before ({_show(self.rotate_before)}) must be shorter than "
                f"--cert-validity ({_show(self.validity)})"
            )

    @property
    def lead(self) -> datetime.timedelta:
        """How long a staged CA is trusted before it signs: long enough for the API server
        to pick up the new caBundle, short enough to fit before the current CA's end."""
        return min(self.validity - self.rotate_before, self.rotate_before) / 2


def _show(delta: datetime.timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s"


def check_interval(policy: Policy) -> float:
    """Seconds between two looks at the Secret: a quarter of rotate-before (so every
    replica reloads well inside the overlap), at least 1 s and at most 60 s."""
    return min(max(policy.rotate_before.total_seconds() / 4, 1.0), 60.0)


@dataclass(frozen=True)
class CaView:
    """One CA of the trust bundle: an identifier (its fingerprint), when it was made and when
    it ends."""

    fingerprint: str
    issued_at: datetime.datetime
    not_after: datetime.datetime


@dataclass(frozen=True)
class ServingView:
    """The serving certificate: which CA of the bundle signed it (None: none of them), when
    it ends, the hosts it names, and whether the stored key belongs to it."""

    issuer: str | None
    not_after: datetime.datetime
    hosts: frozenset[str]
    key_matches: bool


@dataclass(frozen=True)
class CertView:
    """What the Secret holds, as plain data. ``signer`` and ``next`` are the fingerprints
    of the bundle's CAs whose keys are stored (None: no such key, or it matches no CA)."""

    cas: tuple[CaView, ...]
    signer: str | None
    next: str | None
    serving: ServingView | None

    def ca(self, fingerprint: str | None) -> CaView | None:
        return next((c for c in self.cas if c.fingerprint == fingerprint), None)


class Step(enum.Enum):
    """One change to the Secret's material (webhook.admission.selfcerts carries it out)."""

    CREATE = "create"  # a new CA and serving certificate; the bundle holds only the new CA
    STAGE = "stage"  # a new CA, trusted (added to the bundle) but not signing yet
    SWITCH = "switch"  # the staged CA signs from now on: a new serving certificate from it
    REISSUE = "reissue"  # a new serving certificate from the current CA
    PRUNE = "prune"  # expired CAs leave the bundle


def next_step(view: CertView | None, now: datetime.datetime, policy: Policy) -> Step | None:
    """The one change the material needs at ``now``, or None when it is fine as it is."""
    signer = view.ca(view.signer) if view is not None else None
    if view is None or signer is None or signer.not_after <= now:
        return Step.CREATE
    serving = view.serving
    staged = view.ca(view.next)
    served_out = serving is None or serving.not_after <= now
    if staged is not None and (
        served_out
        or (now - staged.issued_at >= policy.lead and signer.not_after - now < policy.rotate_before)
    ):
        return Step.SWITCH
    if staged is None and signer.not_after - now < policy.rotate_before + policy.lead:
        return Step.STAGE
    if (
        serving is None
        or served_out
        or not serving.key_matches
        or serving.issuer != signer.fingerprint
        or not {host_key(h) for h in policy.hosts} <= serving.hosts
        # Reissuing helps only while the CA outlives the overlap; later, SWITCH does it.
        or (
            serving.not_after - now < policy.rotate_before
            and signer.not_after - now >= policy.rotate_before
        )
    ):
        return Step.REISSUE
    if any(c.not_after <= now for c in view.cas):
        return Step.PRUNE
    return None


def serving_not_after(
    signer_not_after: datetime.datetime, now: datetime.datetime, policy: Policy
) -> datetime.datetime:
    """A serving certificate ends after ``validity``, or with its CA if that comes first."""
    return min(now + policy.validity, signer_not_after)


def ca_bundle_patch(configuration: Mapping[str, Any], ca_bundle_b64: str) -> list[dict[str, Any]]:
    """The JSON patch setting every webhook's clientConfig.caBundle of one configuration to
    ``ca_bundle_b64``; [] when all of them already hold it.

    Each webhook is addressed by index and guarded by a ``test`` of its name, and the
    patch carries the resourceVersion it was computed from, so the API server refuses it
    (409) if the configuration changed meanwhile instead of writing into the wrong entry.
    """
    webhooks = configuration.get("webhooks")
    ops: list[dict[str, Any]] = []
    for index, hook in enumerate(webhooks if isinstance(webhooks, list) else []):
        if not isinstance(hook, dict):
            continue
        client = hook.get("clientConfig")
        if isinstance(client, dict) and client.get("caBundle") == ca_bundle_b64:
            continue
        ops.append({"op": "test", "path": f"/webhooks/{index}/name", "value": hook.get("name")})
        ops.append(
            {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle",
             "value": ca_bundle_b64}
        )  # fmt: skip
    if not ops:
        return []
    meta = configuration.get("metadata")
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    if version:
        ops.insert(0, {"op": "replace", "path": "/metadata/resourceVersion", "value": version})
    return ops


def bundle_matches(configuration: Mapping[str, Any], ca_bundle_b64: str) -> bool:
    """True when every webhook of the configuration already holds the bundle."""
    return not ca_bundle_patch(configuration, ca_bundle_b64)


@dataclass(frozen=True)
class ConfigurationRef:
    """One webhook configuration to keep the caBundle in: ``mutating`` or ``validating``."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


_KINDS = {
    "mutating": "mutating",
    "mutatingwebhookconfiguration": "mutating",
    "mutatingwebhookconfigurations": "mutating",
    "validating": "validating",
    "validatingwebhookconfiguration": "validating",
    "validatingwebhookconfigurations": "validating",
}


def parse_configurations(text: str) -> tuple[ConfigurationRef, ...]:
    """``mutating/NAME,validating/NAME`` (kubectl's long kind names work too); InputError
    for anything else."""
    refs: list[ConfigurationRef] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kind, slash, name = item.partition("/")
        if not slash or kind.lower() not in _KINDS or not name or "/" in name:
            raise InputError(
                f"--webhook-configurations: {item!r} is not mutating/NAME or validating/NAME"
            )
        ref = ConfigurationRef(_KINDS[kind.lower()], name)
        if ref not in refs:
            refs.append(ref)
    if not refs:
        raise InputError("--webhook-configurations: name at least one configuration")
    return tuple(refs)


def summary(view: CertView | None) -> Sequence[str]:
    """Log-friendly facts about the material (fingerprints shortened, no key material)."""
    if view is None:
        return ["no material"]
    facts = [f"trusted CAs {', '.join(c.fingerprint[:12] for c in view.cas)}"]
    facts.append(f"signer {(view.signer or '-')[:12]}")
    if view.next:
        facts.append(f"next {view.next[:12]}")
    if view.serving is not None:
        facts.append(f"serving until {view.serving.not_after.isoformat()}")
    return facts
