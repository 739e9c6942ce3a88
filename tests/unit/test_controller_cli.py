"""The controller and status subcommands: their options, and clear refusals of bad ones."""

from __future__ import annotations

import pytest

from webhook.cli import build_parser, main


def test_the_controller_options_parse_as_documented() -> None:
    args = build_parser().parse_args([
        "controller", "--kubeconfig", "k", "--namespace", "ns", "--leader-elect",
        "--identity", "replica-0", "--lease-duration", "6", "--renew-deadline", "4"])
    assert (args.kubeconfig, args.namespace, args.leader_elect, args.identity,
            args.lease_duration, args.renew_deadline, args.workers, args.resync) == (
        "k", "ns", True, "replica-0", 6.0, 4.0, 4, 300)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lease-duration", "5", "--renew-deadline", "5"],
         "--renew-deadline must be > 0 and below --lease-duration"),
        (["--workers", "0"], "--workers must be >= 1 and --resync >= 5"),
        (["--revision-history-limit", "-1"], "--revision-history-limit must be >= 0"),
    ],
    ids=["renew deadline not below the lease", "no workers", "negative history"],
)
def test_bad_controller_options_are_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["controller", *argv]) == 2
    assert capsys.readouterr().err == f"oam-rollout controller: {message}\n"


def test_a_missing_kubeconfig_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "app", "--kubeconfig", "/nonexistent/kubeconfig"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oam-rollout status: ") and "/nonexistent/kubeconfig" in err
    assert "Traceback" not in err and err.count("\n") == 1
