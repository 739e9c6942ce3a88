"""Label selectors as text (--namespace-selector): parsed as the API parses them, matched
with the API's semantics, written back in a form the API reads the same way, and bad
syntax refused with one line that says what and where."""

from __future__ import annotations

import pytest

from webhook.core.selectors import LabelSelector, Requirement, SelectorError, parse_selector


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("", ()),
        ("   ", ()),
        ("rollout.oam.dev/enabled=true",
         (Requirement("rollout.oam.dev/enabled", "=", ("true",)),)),
        ("tier==web", (Requirement("tier", "=", ("web",)),)),
        ("tier != web", (Requirement("tier", "!=", ("web",)),)),
        ("tier=", (Requirement("tier", "=", ("",)),)),
        ("team in (b, a)", (Requirement("team", "in", ("a", "b")),)),
        ("team notin (a,a)", (Requirement("team", "notin", ("a",)),)),
        ("team", (Requirement("team", "exists"),)),
        ("! legacy", (Requirement("legacy", "!"),)),
        ("team in (a,b),!legacy",
         (Requirement("team", "in", ("a", "b")), Requirement("legacy", "!"))),
        ("env=prod, team , example.com/owner notin (x)",
         (Requirement("env", "=", ("prod",)), Requirement("team", "exists"),
          Requirement("example.com/owner", "notin", ("x",)))),
    ],
    ids=["empty", "blank", "equals", "double equals", "not equals", "empty value", "in",
         "notin", "exists", "does not exist", "set and absent", "three, with spaces"],
)
def test_each_form_of_the_syntax_parses_into_its_requirements(
    text: str, requirements: tuple[Requirement, ...]
) -> None:
    assert parse_selector(text) == LabelSelector(requirements)


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {}, True),
        ("a=1", {"a": "1"}, True),
        ("a=1", {"a": "2"}, False),
        ("a=1", {}, False),
        ("a!=1", {}, True),
        ("a!=1", {"a": "1"}, False),
        ("a in (1,2)", {"a": "2"}, True),
        ("a in (1,2)", {}, False),
        ("a notin (1,2)", {}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "1"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("team in (a,b),!legacy", {"team": "a"}, True),
        ("team in (a,b),!legacy", {"team": "a", "legacy": "yes"}, False),
    ],
)
def test_a_selector_matches_labels_as_the_api_does(
    text: str, labels: dict[str, str], matches: bool
) -> None:
    assert parse_selector(text).matches(labels) is matches


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("rollout.oam.dev/enabled == true", "rollout.oam.dev/enabled=true"),
        ("team in ( b , a ),! legacy", "team in (a,b),!legacy"),
        ("a!=1,b notin (y,x),c", "a!=1,b notin (x,y),c"),
    ],
)
def test_a_selector_is_written_back_in_a_canonical_form_that_parses_the_same(
    text: str, written: str
) -> None:
    selector = parse_selector(text)
    assert str(selector) == written
    assert parse_selector(written) == selector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team in (a", "expected ',' or ')' in the values of 'team in' (at the end)"),
        ("team in a", "expected '(' after 'team in' (at position 9)"),
        ("team in ()", "'team in' needs at least one value (at position 10)"),
        ("a=1 b=2", "expected ',' between requirements (at position 5)"),
        ("a=1,", "expected a label key (at the end)"),
        (",a", "expected a label key (at position 1)"),
        ("a > 1", "the operator '>' is not supported (at position 3)"),
        ("a b", "expected '=', '==', '!=', 'in', 'notin', ',' or the end after the key 'a' "
                "(at position 3)"),
        ("-a=1", "the key '-a' must be at most 63 letters, digits, '-', '_' or '.', "
                 "beginning and ending with a letter or digit (after an optional prefix/) "
                 "(at position 1)"),
        ("Bad_Prefix/a=1", "the prefix of the key 'Bad_Prefix/a' must be a lowercase DNS "
                           "subdomain (at position 1)"),
        ("a=" + "x" * 64, f"the value {'x' * 64!r} must be at most 63 letters, digits, '-', "
                          "'_' or '.', beginning and ending with a letter or digit "
                          "(at position 3)"),
        ("a=b=c", "expected ',' between requirements (at position 4)"),
    ],
    ids=["unclosed set", "set without parentheses", "empty set", "no comma",
         "trailing comma", "leading comma", "numeric operator", "two words", "bad key",
         "bad prefix", "value too long", "two equals"],
)
def test_bad_syntax_is_refused_in_one_line_saying_what_and_where(
    text: str, message: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert str(caught.value) == f"invalid label selector {text!r}: {message}"
