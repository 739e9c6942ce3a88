"""The tests' one poll loop: it returns the awaited answer, and fails showing the last one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.fixtures.polling import NeverHappened, eventually


def answers(*values: object) -> Callable[[], object]:
    """A check that gives ``values`` in turn, then repeats the last one."""
    given: Iterator[object] = iter(values)
    last: list[object] = [None]

    def check() -> object:
        last[0] = next(given, last[0])
        if isinstance(last[0], BaseException):
            raise last[0]
        return last[0]

    return check


@pytest.mark.parametrize(
    ("check", "kwargs", "awaited"),
    [
        (answers(0, "", [], "ready"), {}, "ready"),
        (answers(1, 2, 3), {"equals": 3}, 3),
        (answers(1, 5, 9), {"until": lambda n: n > 4}, 5),
        (answers(ConnectionError("not listening"), 200), {"ignoring": (ConnectionError,)}, 200),
    ],
    ids=["first truthy answer", "equal answer", "until holds", "ignored errors are retried"],
)
def test_the_first_answer_that_will_do_is_returned(
    check: Callable[[], object], kwargs: dict[str, object], awaited: object
) -> None:
    assert eventually(check, timeout=5, interval=0, **kwargs) == awaited  # type: ignore[arg-type]


def test_a_wait_that_times_out_names_what_it_awaited_and_shows_the_last_answer() -> None:
    with pytest.raises(NeverHappened) as caught:
        eventually(answers({"rows": 1}, {"rows": 2}), equals={"rows": 3}, timeout=0.05,
                   interval=0.01, what="the rollout view", context=lambda: "controller log tail")
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("the rollout view: not as awaited after 0.05 s (")
    assert lines[1:3] == ["last seen: {'rows': 2}", "expected:  {'rows': 3}"]
    assert "-{'rows': 3}" in lines and "+{'rows': 2}" in lines
    assert lines[-1] == "controller log tail"


def test_an_ignored_error_that_never_stops_is_shown_as_the_last_answer() -> None:
    with pytest.raises(NeverHappened, match=r"last attempt raised OSError: refused"):
        eventually(answers(OSError("refused")), timeout=0.05, interval=0.01,
                   ignoring=(OSError,))


def test_an_error_not_ignored_stops_the_wait_at_once() -> None:
    calls = []

    def died() -> bool:
        calls.append(1)
        raise RuntimeError("the process exited 3")

    with pytest.raises(RuntimeError, match="exited 3"):
        eventually(died, timeout=5)
    assert calls == [1]
