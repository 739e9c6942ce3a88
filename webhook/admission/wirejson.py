"""JSON on the admission wire: orjson, with the standard library where the two differ.

Holds ``loads`` (an AdmissionReview body), ``dumps`` (an answer, a patch; compact,
UTF-8) and ``dumps_line`` (a log line). orjson decodes and encodes a review several
times faster than the json module (docs/webhook.md, Where the time goes). It does not
accept everything json does, and it reads integers past 64 bits as floats; in those
cases json does the work, so what a body means never depends on which library read it.
It must not know what the documents mean.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# A run of 19 digits may be an integer that does not fit in 64 bits, which orjson would
# turn into a float (targetSize: 2^64 must be judged as the integer it is). Found by
# mapping every digit to "0" and the rest to " ": a regex takes ten times as long.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGITS = b"0" * 19
# Built once: json.dumps with options builds a new encoder on every call.
_FALLBACK_ENCODER = json.JSONEncoder(separators=(",", ":"))
_LINE_FALLBACK_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def loads(body: bytes) -> Any:
    """The document in ``body``; ValueError (or RecursionError) as json.loads raises them."""
    if _LONG_DIGITS not in body.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            # NaN, Infinity, 1e400, lone surrogates: json reads them; its verdict stands.
            pass
    return json.loads(body)


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON of ``document`` (integers past 64 bits, non-string keys: json)."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return _FALLBACK_ENCODER.encode(document).encode()


def dumps_line(entry: Any) -> str:
    """A log line's JSON text; what JSON cannot hold is written as its str(), as
    webhook.core.logformat's formatter does."""
    try:
        return orjson.dumps(entry, default=str).decode()
    except TypeError:
        return _LINE_FALLBACK_ENCODER.encode(entry)
