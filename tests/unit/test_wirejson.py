"""JSON on the admission wire: orjson where it agrees with json, json where it does not, so
a body means the same whichever library read it."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission.wirejson import dumps, dumps_line, loads
from webhook.core.logformat import JsonFormatter

# Every JSON value: integers well past 64 bits, floats, any text (non-ASCII included).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_a_document_reads_back_as_json_reads_it(value: Any) -> None:
    body = json.dumps(value).encode()
    assert loads(body) == json.loads(body)
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"targetSize": 18446744073709551616}', "an integer past 64 bits stays an integer"),
        (b'{"targetSize": -9223372036854775809}', "so does a negative one"),
        (b'{"targetSize": 12345678901234567890123}', "and a longer one"),
        (b'{"a": NaN, "b": Infinity}', "json reads NaN and Infinity"),
        (b'{"a": 1e400}', "json reads an overflowing float as inf"),
        (b'"\\ud800"', "json reads a lone surrogate"),
        (b'{"a": 1, "a": 2}', "the last duplicate key wins"),
    ],
)
def test_where_orjson_and_json_differ_json_decides(body: bytes, why: str) -> None:
    decoded = loads(body)
    expected = json.loads(body)
    # NaN is not equal to itself: compare the text json gives for both.
    assert json.dumps(decoded) == json.dumps(expected), why
    if isinstance(expected, dict) and isinstance(expected.get("targetSize"), int):
        assert type(decoded["targetSize"]) is int


@pytest.mark.parametrize("body", [b"", b"{", b"[1,]", b"\xff", b"nul"])
def test_what_neither_reads_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        loads(body)


def test_a_document_nested_past_the_recursion_limit_is_refused_as_json_refuses_it() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises((ValueError, RecursionError)):
        loads(body)


@pytest.mark.parametrize(
    "document",
    [{"n": 2**70}, {"n": -(2**70)}, {1: "integer key"}, {"f": math.pi, "t": "é"}],
)
def test_what_orjson_cannot_encode_is_encoded_by_json(document: Any) -> None:
    assert json.loads(dumps(document)) == json.loads(json.dumps(document))


def test_a_log_line_is_the_entry_the_formatter_prints_even_for_values_json_cannot_hold() -> None:
    entry = {"msg": "x", "when": object, "big": 2**70, "name": "ünïcode"}
    record = logging.makeLogRecord({"name": "t", "msg": dict(entry)})
    formatted = json.loads(JsonFormatter().format(record))
    written = json.loads(dumps_line(dict(entry)))
    assert written == {k: v for k, v in formatted.items() if k not in ("ts", "logger")}
