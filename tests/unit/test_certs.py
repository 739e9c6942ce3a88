"""TLS material: what `oam-rollout certs` writes, and how a serving context follows the files."""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from webhook.admission.certs import CA_FILE, CERT_FILE, KEY_FILE, generate, parse_hosts
from webhook.admission.tls import TlsReloader
from webhook.cli import main
from webhook.core.errors import InputError

HOSTS = ["127.0.0.1", "oam-rollout-webhook.oam-rollout-system.svc", "::1"]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_generate_writes_a_ca_and_a_serving_pair_readable_by_the_owner_only(tmp_path: Path) -> None:
    bundle = generate(HOSTS, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [CA_FILE, CERT_FILE, KEY_FILE]
    for path in (bundle.ca_path, bundle.cert_path, bundle.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_serving_certificate_carries_every_host_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    bundle = generate(HOSTS, tmp_path)
    ca, cert = load(bundle.ca_path), load(bundle.cert_path)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [HOSTS[1]]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(HOSTS[0]),
        ipaddress.ip_address(HOSTS[2]),
    ]
    cert.verify_directly_issued_by(ca)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_the_ca_bundle_is_the_base64_of_the_ca_file(tmp_path: Path) -> None:
    bundle = generate(HOSTS, tmp_path)
    assert base64.b64decode(bundle.ca_bundle_b64) == bundle.ca_path.read_bytes()


@pytest.mark.parametrize("text", ["", " , ", ","])
def test_no_hosts_is_a_clear_error(text: str) -> None:
    with pytest.raises(InputError, match="at least one host"):
        parse_hosts(text)


@pytest.mark.parametrize("host", ["has space", "a/b"])
def test_hosts_that_are_neither_ip_nor_dns_are_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(InputError, match="neither an IP address nor a DNS name"):
        generate([host], tmp_path)


def test_the_certs_command_prints_only_the_ca_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["certs", "--hosts", "127.0.0.1,localhost", "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out.strip()
    assert code == 0
    assert base64.b64decode(out) == (tmp_path / "c" / CA_FILE).read_bytes()


def test_the_certs_command_reports_bad_hosts_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "--hosts", ",", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


# ---------------------------------------------------------------------------
# serving contexts that follow the files


def presented_certificate(context: ssl.SSLContext, ca: Path) -> x509.Certificate:
    """Handshake once over a socketpair and return the certificate the server presented."""
    server_sock, client_sock = socket.socketpair()
    client_ctx = ssl.create_default_context(cafile=str(ca))
    client_ctx.check_hostname = False
    result: list[bytes] = []

    def serve() -> None:
        with context.wrap_socket(server_sock, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with client_ctx.wrap_socket(client_sock) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        result.append(der)
        tls.sendall(b"x")
    thread.join(timeout=5)
    return x509.load_der_x509_certificate(result[0])


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Path]:
    generate(["127.0.0.1"], tmp_path)
    yield tmp_path


def test_a_reloader_serves_the_new_pair_after_the_files_change(pair: Path) -> None:
    reloader = TlsReloader(pair / CERT_FILE, pair / KEY_FILE)
    first = presented_certificate(reloader.context(), pair / CA_FILE)
    generate(["127.0.0.1"], pair)
    second = presented_certificate(reloader.context(), pair / CA_FILE)
    assert first.serial_number != second.serial_number
    assert second == load(pair / CERT_FILE)
    assert reloader.reloads == 1


def test_a_reloader_reuses_its_context_while_the_files_stay_the_same(pair: Path) -> None:
    reloader = TlsReloader(pair / CERT_FILE, pair / KEY_FILE)
    assert reloader.context() is reloader.context()


def test_a_half_rotated_pair_keeps_the_previous_context(
    pair: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reloader = TlsReloader(pair / CERT_FILE, pair / KEY_FILE)
    before = reloader.context()
    other = tmp_path_factory.mktemp("other")
    generate(["127.0.0.1"], other)
    os.replace(other / KEY_FILE, pair / KEY_FILE)  # new key, old certificate: a mismatch
    assert reloader.context() is before
    os.replace(other / CERT_FILE, pair / CERT_FILE)  # the pair is whole again
    assert reloader.context() is not before


def test_a_reloader_without_any_loadable_pair_refuses_to_serve(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")
    reloader = TlsReloader(tmp_path / "tls.crt", tmp_path / "tls.key")
    with pytest.raises(ssl.SSLError):
        reloader.context()
    assert reloader.loaded is False
