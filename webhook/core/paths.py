"""Field paths into user objects, printed the way apimachinery prints them.

Holds the immutable FieldPath value and nothing else: no validation rules, no I/O.
A path is built by the caller and passed down, so every error names the exact
field (`spec.components[0].traits[0].properties.rolloutBatches[1].replicas`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldPath:
    """An immutable path such as ``spec.components[0].name``."""

    parts: tuple[str | int, ...] = ()

    @classmethod
    def root(cls, *names: str) -> FieldPath:
        return cls(tuple(names))

    def child(self, name: str, *more: str) -> FieldPath:
        return FieldPath((*self.parts, name, *more))

    def index(self, i: int) -> FieldPath:
        return FieldPath((*self.parts, i))

    def key(self, k: str) -> FieldPath:
        # Map keys print as [key], like apimachinery's Key().
        return FieldPath((*self.parts, f"[{k}]"))

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
