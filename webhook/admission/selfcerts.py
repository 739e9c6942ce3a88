"""The self-managed webhook TLS material: the Secret's keys, what they say, each Step carried out.

Holds ``Material``, the Secret's data as PEM bytes: ``ca.crt`` (every CA to trust, one
after the other: the caBundle, also what a scraper of /metrics verifies with), ``ca.key``
(the key of the CA that signs), ``ca-next.key`` (the key of a staged CA, trusted but not
signing yet), ``tls.crt`` / ``tls.key`` (the serving pair); ``view_of`` (the material read
into webhook.admission.certplan's plain CertView) and ``carry_out`` (one certplan.Step
applied, making keys where it must). Which CA a key belongs to is found by matching
public keys, so the Secret needs no bookkeeping fields. It must not read a clock (the
caller passes ``now``), must not talk to the API and must not log key material.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from webhook.admission.certplan import (
    CaView,
    CertView,
    Policy,
    ServingView,
    Step,
    host_key,
    serving_not_after,
)
from webhook.admission.certs import issue, issued_at, new_ca

CA_BUNDLE_KEY = "ca.crt"
CA_KEY_KEY = "ca.key"
NEXT_KEY_KEY = "ca-next.key"
CERT_KEY = "tls.crt"
KEY_KEY = "tls.key"

_PEM = serialization.Encoding.PEM
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


@dataclass(frozen=True)
class Material:
    """The Secret's data, decoded (b"" for a key that is absent or not base64)."""

    ca_bundle: bytes = b""
    ca_key: bytes = b""
    next_key: bytes = b""
    tls_crt: bytes = b""
    tls_key: bytes = b""

    @classmethod
    def from_secret_data(cls, data: Mapping[str, Any] | None) -> Material:
        def decoded(key: str) -> bytes:
            value = (data or {}).get(key)
            if not isinstance(value, str):
                return b""
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return b""

        return cls(
            ca_bundle=decoded(CA_BUNDLE_KEY),
            ca_key=decoded(CA_KEY_KEY),
            next_key=decoded(NEXT_KEY_KEY),
            tls_crt=decoded(CERT_KEY),
            tls_key=decoded(KEY_KEY),
        )

    def secret_data(self) -> dict[str, str]:
        """The Secret's ``data`` (base64); ca-next.key only while a CA is staged."""
        pairs = {
            CA_BUNDLE_KEY: self.ca_bundle,
            CA_KEY_KEY: self.ca_key,
            NEXT_KEY_KEY: self.next_key,
            CERT_KEY: self.tls_crt,
            KEY_KEY: self.tls_key,
        }
        return {k: base64.b64encode(v).decode("ascii") for k, v in pairs.items() if v}

    @property
    def ca_bundle_b64(self) -> str:
        """What every webhook's clientConfig.caBundle must hold."""
        return base64.b64encode(self.ca_bundle).decode("ascii")


def _certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem) if pem.strip() else []
    except ValueError:
        return []


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _public(key_pem: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo of a private key, None when it does not load."""
    if not key_pem:
        return None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return None
    return key.public_key().public_bytes(_PEM, _SPKI)


def _owner(key_pem: bytes, cas: Sequence[x509.Certificate]) -> x509.Certificate | None:
    public = _public(key_pem)
    if public is None:
        return None
    return next((c for c in cas if c.public_key().public_bytes(_PEM, _SPKI) == public), None)


def _issuer(cert: x509.Certificate, cas: Sequence[x509.Certificate]) -> str | None:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return fingerprint(ca)
    return None


def _hosts(cert: x509.Certificate) -> frozenset[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    found = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    found += names.get_values_for_type(x509.DNSName)
    return frozenset(host_key(h) for h in found)


def view_of(material: Material) -> CertView | None:
    """The material as plain data for certplan.next_step; None when it holds no CA."""
    cas = _certificates(material.ca_bundle)
    if not cas:
        return None
    signer = _owner(material.ca_key, cas)
    staged = _owner(material.next_key, cas)
    serving: ServingView | None = None
    leaf = _certificates(material.tls_crt)
    if leaf:
        cert = leaf[0]
        serving = ServingView(
            issuer=_issuer(cert, cas),
            not_after=cert.not_valid_after_utc,
            hosts=_hosts(cert),
            key_matches=_public(material.tls_key) == cert.public_key().public_bytes(_PEM, _SPKI),
        )
    return CertView(
        cas=tuple(CaView(fingerprint(c), issued_at(c), c.not_valid_after_utc) for c in cas),
        signer=fingerprint(signer) if signer is not None else None,
        next=fingerprint(staged) if staged is not None and staged != signer else None,
        serving=serving,
    )


def _pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(_PEM) for c in certs)


def _serving(
    ca: x509.Certificate, ca_key: bytes, now: datetime.datetime, policy: Policy
) -> tuple[bytes, bytes]:
    return issue(
        ca.public_bytes(_PEM), ca_key, policy.hosts, now,
        serving_not_after(ca.not_valid_after_utc, now, policy),
    )  # fmt: skip


def carry_out(
    material: Material, step: Step, now: datetime.datetime, policy: Policy
) -> Material:
    """The material after ``step`` at ``now``. STAGE, SWITCH and REISSUE expect the view
    next_step saw (a signer, and for SWITCH a staged CA); without it they CREATE."""
    cas = _certificates(material.ca_bundle)
    signer = _owner(material.ca_key, cas)
    staged = _owner(material.next_key, cas)
    if step is Step.SWITCH and staged is not None:
        crt, key = _serving(staged, material.next_key, now, policy)
        return replace(material, ca_key=material.next_key, next_key=b"", tls_crt=crt, tls_key=key)
    if step is Step.STAGE and signer is not None:
        ca_pem, ca_key = new_ca(now, policy.validity)
        return replace(material, ca_bundle=_pem(cas) + ca_pem, next_key=ca_key)
    if step is Step.REISSUE and signer is not None:
        crt, key = _serving(signer, material.ca_key, now, policy)
        return replace(material, tls_crt=crt, tls_key=key)
    if step is Step.PRUNE:
        keep = [c for c in cas if c.not_valid_after_utc > now or c in (signer, staged)]
        return replace(material, ca_bundle=_pem(keep))
    ca_pem, ca_key = new_ca(now, policy.validity)
    ca = x509.load_pem_x509_certificate(ca_pem)
    crt, key = _serving(ca, ca_key, now, policy)
    return Material(ca_bundle=ca_pem, ca_key=ca_key, tls_crt=crt, tls_key=key)
