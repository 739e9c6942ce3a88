"""The render memo: a bounded, thread-safe LRU of rendered objects and of component checks.

Holds RenderMemo, which the Renderer uses to skip Jinja2 and the YAML parse for contexts it
has rendered before. Values are kept as JSON text and decoded on every hit, so no caller
ever shares an object with another. It must not render, and must not know template names
beyond using them as part of a key.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

_KEY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_CHECK_ENCODER = json.JSONEncoder(separators=(",", ":"))


class RenderMemo:
    """A thread-safe LRU of rendered objects, keyed by template name and canonical context.

    Values are stored as JSON text and decoded on every hit: each caller gets objects of
    its own. Contexts or results that JSON cannot carry exactly are simply not memoized.
    Failed renders are never stored, so errors are always raised afresh. Beside the
    objects it keeps, under the same bound, the keys of component checks that rendered
    fine (see Renderer.check_component); those hold no objects at all.
    """

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._checked: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, name: str, context: Mapping[str, Any]) -> str | None:
        if not self.size:
            return None
        try:
            # Context values went through plain(): string keys, so sorted JSON is canonical
            # and tells 1 from 1.0, true and "1" apart.
            return name + "\n" + _KEY_ENCODER.encode(context)
        except (TypeError, ValueError):
            return None

    def get(self, key: str) -> list[dict[str, Any]] | None:
        with self._lock:
            text = self._entries.get(key)
            if text is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        docs: list[dict[str, Any]] = json.loads(text)
        return docs

    def put(self, key: str, docs: list[dict[str, Any]]) -> None:
        try:
            text = json.dumps(docs, separators=(",", ":"))
        except (TypeError, ValueError):
            return
        # YAML can yield what JSON cannot carry (integer keys, dates): keep those uncached.
        if json.loads(text) != docs:
            return
        with self._lock:
            self._entries[key] = text
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    # Checks: which inputs rendered fine (nothing decoded, nothing handed out).

    def check_key(self, inputs: list[Any]) -> str | None:
        if not self.size:
            return None
        try:
            # Unsorted is still exact: equal text means equal values in equal order.
            return _CHECK_ENCODER.encode(inputs)
        except (TypeError, ValueError):
            return None

    def rendered_ok(self, key: str) -> bool:
        with self._lock:
            if key not in self._checked:
                return False
            self._checked.move_to_end(key)
            return True

    def remember_ok(self, key: str) -> None:
        with self._lock:
            self._checked[key] = None
            self._checked.move_to_end(key)
            while len(self._checked) > self.size:
                self._checked.popitem(last=False)
