"""TLS material for the admission webhook: a private CA and a serving certificate.

Holds ``generate`` (ECDSA P-256 CA + serving certificate carrying the requested SANs,
written as ca.crt, tls.crt, tls.key with mode 0600, each file replaced atomically so a
running server never reads half a file) and ``CertBundle``. The CA key is never written:
rotating means generating a new pair and a new caBundle. It must not talk to the cluster
and must not log key material.
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
    """Split ``127.0.0.1,name.ns.svc`` into hosts; raises InputError when none is given."""
    hosts = [h.strip() for h in text.split(",") if h.strip()]
    if not hosts:
        raise InputError("--hosts: give at least one host name or IP address")
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


def build(hosts: Sequence[str]) -> tuple[bytes, bytes, bytes]:
    """PEM bytes of (CA certificate, serving certificate, serving key) for ``hosts``."""
    if not hosts:
        raise InputError("--hosts: give at least one host name or IP address")
    sans = _subject_alt_names(hosts)
    now = datetime.datetime.now(datetime.UTC)
    # Backdate a little: clocks of the apiserver and of this process may differ.
    not_before = now - datetime.timedelta(minutes=5)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("oam-rollout webhook CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca_cert.public_bytes(pem), cert.public_bytes(pem), key_pem


def _write_private(path: Path, data: bytes) -> None:
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
        _write_private(paths.ca_path, ca_pem)
        _write_private(paths.key_path, key_pem)
        _write_private(paths.cert_path, cert_pem)
    except OSError as exc:
        raise InputError(f"cannot write certificates to {out}: {exc.strerror or exc}") from exc
    return paths
