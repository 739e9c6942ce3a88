"""The sharding and pass-through options of `controller` and `webhook`: parsed as
documented, and bad ones refused in one line."""

from __future__ import annotations

import pytest

from webhook.cli import build_parser, main


def test_the_shard_options_parse_and_default_to_one_shard_that_denies_unknown_types() -> None:
    parser = build_parser()
    default = parser.parse_args(["controller"])
    sharded = parser.parse_args(["controller", "--shard-id", "1", "--shards", "3",
                                 "--unknown-types", "ignore"])
    webhook = parser.parse_args(["webhook", "--tls-cert", "c", "--tls-key", "k",
                                 "--unknown-types", "ignore"])
    assert [(default.shard_id, default.shards, default.unknown_types),
            (sharded.shard_id, sharded.shards, sharded.unknown_types),
            webhook.unknown_types] == [(0, 1, "deny"), (1, 3, "ignore"), "ignore"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--shard-id", "2", "--shards", "2"], "--shard-id 2: must be between 0 and 1 (--shards 2)"),
    (["--shards", "0"], "--shards 0: must be at least 1"),
], ids=["shard id past the count", "no shards"])
def test_bad_shard_options_are_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["controller", *argv]) == 2
    assert capsys.readouterr().err == f"oam-rollout controller: {message}\n"
