"""Documents: YAML (or JSON) text in, plain objects out.

Holds ``load_documents``, which the CLI reads files and stdin with: every document of
a stream, ``kind: List`` expanded, with a cap on what YAML aliases may expand to. It
must not interpret the documents (see webhook.core.model and webhook.core.objects) and
must not do I/O beyond parsing the text it is handed.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from webhook.core.errors import InputError


def load_documents(text: str) -> list[object]:
    """Every document of a YAML (or JSON) stream, empty documents dropped.

    A ``kind: List`` document is expanded into its items. Raises InputError with
    a one-line message when the text is not YAML.
    """
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise InputError(f"not valid YAML{where}: {problem}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        # safe_load can still fail on odd scalars (e.g. bad timestamps); keep it one line.
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not valid YAML: {detail}") from None
    out: list[object] = []
    for doc in docs:
        if doc is None:
            continue
        _check_size(doc)
        if (
            isinstance(doc, Mapping)
            and doc.get("kind") == "List"
            and isinstance(doc.get("items"), list)
        ):
            out.extend(item for item in doc["items"] if item is not None)
        else:
            out.append(doc)
    return out


# Aliases let a few lines of YAML stand for a huge (or endless) tree; cap the walk.
MAX_NODES = 200_000


def _check_size(doc: object) -> None:
    """InputError for a document that refers to itself or expands past MAX_NODES values."""
    seen = 0
    stack: list[tuple[object, frozenset[int]]] = [(doc, frozenset())]
    while stack:
        value, ancestors = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise InputError(f"document expands to more than {MAX_NODES} values (YAML aliases?)")
        if isinstance(value, Mapping):
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = list(value)
        else:
            continue
        if id(value) in ancestors:
            raise InputError("document refers to itself through a YAML alias")
        inner = ancestors | {id(value)}
        stack.extend((child, inner) for child in children)
