"""Field paths into user objects, printed the way apimachinery prints them.

Holds the immutable FieldPath value and nothing else: no validation rules, no I/O.
A path is built by the caller and passed down, so every error names the exact
field (`spec.components[0].traits[0].properties.rolloutBatches[1].replicas`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast


@dataclass(frozen=True, slots=True)
class FieldPath:
    """An immutable path such as ``spec.components[0].name``."""

    parts: tuple[str | int, ...] = ()

    @classmethod
    def root(cls, *names: str) -> FieldPath:
        return cls(tuple(names))

    # child/index/key build the value without the frozen dataclass __init__ (a call that
    # sets the field through object.__setattr__): every property and trait a review
    # checks builds a few paths, and this halves what each costs. _extend is the same
    # value FieldPath(parts) is.
    def child(self, name: str, *more: str) -> FieldPath:
        return _extend((*self.parts, name, *more))

    def index(self, i: int) -> FieldPath:
        return _extend((*self.parts, i))

    def key(self, k: str) -> FieldPath:
        # Map keys print as [key], like apimachinery's Key().
        return _extend((*self.parts, f"[{k}]"))

    def __str__(self) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, int):
                out.append(f"[{part}]")
            elif part.startswith("["):
                out.append(part)
            else:
                out.append(f".{part}" if out else part)
        return "".join(out)


_new = object.__new__
# The slot's own setter: what the generated __init__ ends up calling, minus the call.
_set_parts = cast(Any, FieldPath.__dict__["parts"]).__set__


def _extend(parts: tuple[str | int, ...]) -> FieldPath:
    path: FieldPath = _new(FieldPath)
    _set_parts(path, parts)
    return path
