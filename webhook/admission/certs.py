"""TLS material for the admission webhook: a private CA and a serving certificate.

Holds ``generate`` (ECDSA P-256 CA + serving certificate carrying the requested SANs,
written as ca.crt, tls.crt, tls.key with mode 0600, each file replaced atomically so a
running server never reads half a file), ``CertBundle``, and the two builders it and the
self-managed mode (webhook.admission.selfcerts) share: ``new_ca`` and ``issue``, which
take the time as an argument. ``generate`` never writes the CA key: rotating means
generating a new pair and a new caBundle. It must not talk to the cluster and must not
log key material.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.core.errors import InputError

CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"

CA_DAYS = 3650
CERT_DAYS = 365


@dataclass(frozen=True)
class CertBundle:
    """Where the files went, and the CA as the base64 caBundle webhook configurations take."""

    ca_bundle_b64: str
    cert_path: Path
    key_path: Path
    ca_path: Path


def parse_hosts(text: str) -> list[str]:
    """Split ``127.0.0.1,name.ns.svc`` into hosts; InputError when none is given or one is
    neither an IP address nor a DNS name."""
    hosts = [h.strip() for h in text.split(",") if h.strip()]
    if not hosts:
        raise InputError("--hosts: give at least one host name or IP address")
    _subject_alt_names(hosts)  # a host that is neither an IP nor a name fails here
    return hosts


def _subject_alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() for c in host) or "/" in host:
                raise InputError(
                    f"--hosts: {host!r} is neither an IP address nor a DNS name"
                ) from None
            names.append(x509.DNSName(host))
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oam-rollout"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


# Certificates start this long before they are made: clocks of the apiserver and of this
# process may differ. issued_at() undoes it, so a certificate also tells when it was made.
CLOCK_SKEW = datetime.timedelta(minutes=5)
_PEM = serialization.Encoding.PEM


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def issued_at(cert: x509.Certificate) -> datetime.datetime:
    """When a certificate made here was made (its notBefore without the skew allowance)."""
    return cert.not_valid_before_utc + CLOCK_SKEW


def new_ca(now: datetime.datetime, validity: datetime.timedelta) -> tuple[bytes, bytes]:
    """PEM bytes of (CA certificate, CA key), valid from ``now`` for ``validity``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    # A serial in the name keeps successive CAs apart when several are trusted at once.
    ca_name = _name(f"oam-rollout webhook CA {x509.random_serial_number() % 10**8:08d}")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert.public_bytes(_PEM), _key_pem(ca_key)


def issue(
    ca_pem: bytes,
    ca_key_pem: bytes,
    hosts: Sequence[str],
    now: datetime.datetime,
    not_after: datetime.datetime,
) -> tuple[bytes, bytes]:
    """PEM bytes of (serving certificate, serving key) for ``hosts``, signed by the CA."""
    if not hosts:
        raise InputError("--hosts: give at least one host name or IP address")
    sans = _subject_alt_names(hosts)
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InputError("the CA key is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(_PEM), _key_pem(key)


def build(hosts: Sequence[str]) -> tuple[bytes, bytes, bytes]:
    """PEM bytes of (CA certificate, serving certificate, serving key) for ``hosts``."""
    if not hosts:
        raise InputError("--hosts: give at least one host name or IP address")
    _subject_alt_names(hosts)  # bad hosts fail before any key is made
    now = datetime.datetime.now(datetime.UTC)
    ca_pem, ca_key_pem = new_ca(now, datetime.timedelta(days=CA_DAYS))
    cert_pem, key_pem = issue(
        ca_pem, ca_key_pem, hosts, now, now + datetime.timedelta(days=CERT_DAYS)
    )
    return ca_pem, cert_pem, key_pem


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (temp file + rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate(hosts: Sequence[str], out: Path) -> CertBundle:
    """Create a CA and a serving certificate for ``hosts`` in ``out`` (created if missing).

    The key is replaced before the certificate: a server that reloads between the two
    renames sees a mismatched pair, fails to load it and keeps its previous context.
    """
    ca_pem, cert_pem, key_pem = build(hosts)
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths = CertBundle(
            ca_bundle_b64=base64.b64encode(ca_pem).decode("ascii"),
            cert_path=out / CERT_FILE,
            key_path=out / KEY_FILE,
            ca_path=out / CA_FILE,
        )
        write_private(paths.ca_path, ca_pem)
        write_private(paths.key_path, key_pem)
        write_private(paths.cert_path, cert_pem)
    except OSError as exc:
        raise InputError(f"cannot write certificates to {out}: {exc.strerror or exc}") from exc
    return paths
