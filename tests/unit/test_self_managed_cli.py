"""`oam-rollout webhook --self-managed-certs`: setup mistakes are one line and exit 2."""

from __future__ import annotations

import pytest

from webhook.cli import main

GOOD = [
    "webhook", "--self-managed-certs", "--certs-secret", "tls", "--certs-namespace", "ns",
    "--webhook-configurations", "mutating/m,validating/v", "--cert-hosts", "127.0.0.1",
    "--kubeconfig", "/nonexistent/kubeconfig",
]  # fmt: skip


def _without(flag: str) -> list[str]:
    at = GOOD.index(flag)
    return GOOD[:at] + GOOD[at + 2 :]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (_without("--certs-secret"), "--self-managed-certs needs --certs-secret"),
        (_without("--webhook-configurations"),
         "--self-managed-certs needs --webhook-configurations"),
        (_without("--cert-hosts"), "--self-managed-certs needs --cert-hosts"),
        ([*_without("--certs-namespace"), "--certs-namespace", ""],
         "needs --certs-namespace (or $POD_NAMESPACE)"),
        ([*GOOD, "--tls-cert", "c", "--tls-key", "k"],
         "--tls-cert/--tls-key and --self-managed-certs exclude each other"),
        ([*GOOD, "--cert-validity", "1y"], "--cert-validity '1y': not a duration"),
        ([*GOOD, "--cert-validity", "10s", "--rotate-before", "10s"],
         "--rotate-before (10s) must be shorter than --cert-validity (10s)"),
        ([*_without("--webhook-configurations"), "--webhook-configurations", "pods/x"],
         "'pods/x' is not mutating/NAME or validating/NAME"),
        ([*_without("--cert-hosts"), "--cert-hosts", "a b"], "is neither an IP address"),
        (["webhook", "--kubeconfig", "/nonexistent"], "--tls-cert is required"),
    ],
    ids=["secret", "configurations", "hosts", "namespace", "both-modes", "duration",
         "rotate-too-late", "configuration-kind", "bad-host", "no-tls-at-all"],
)  # fmt: skip
def test_a_setup_mistake_is_one_line_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert (code, message in err, err.count("\n")) == (2, True, 1), err
