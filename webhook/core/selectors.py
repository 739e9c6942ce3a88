"""Kubernetes label selectors as text: parsed, matched against labels, and written back.

Holds ``parse_selector`` (the string form ``kubectl -l`` and the API's ``labelSelector``
take: equality-based ``k=v``, ``k==v``, ``k!=v``; set-based ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists), ``!k`` (does not exist); requirements separated by
commas and ANDed; whitespace around tokens is free), ``LabelSelector.matches`` (the API's
semantics: ``!=`` and ``notin`` also match labels without the key) and ``str()`` (a
canonical form the API parses the same way). Keys and values are checked as the API
checks them, so a selector this accepts is one the API accepts; the numeric ``>``/``<``
operators are not supported. It must not do I/O; bad input raises SelectorError with one
line that says what is wrong and where.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

# Label values and the name part of keys: at most 63, alphanumeric at both ends.
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SPECIAL = "=!(),<>"


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message is one line for the user."""


@dataclass(frozen=True)
class Requirement:
    """One term: ``key``, its operator, and the values it compares with (sorted)."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        present = self.key in labels
        value = str(labels[self.key]) if present else None
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present  # "!"

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        if self.operator in ("=", "!="):
            return f"{self.key}{self.operator}{self.values[0]}"
        return f"{self.key} {self.operator} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """Requirements that must all hold; none: every set of labels matches."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, Any] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# ---- parsing -------------------------------------------------------------------------------


def _tokens(text: str) -> list[tuple[str, int]]:
    """(token, position): ``!=``, ``==``, one special character, or a word (identifier,
    ``in``, ``notin``); whitespace separates and is dropped."""
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith(("!=", "=="), i):
            out.append((text[i:i + 2], i))
            i += 2
        elif ch in _SPECIAL:
            out.append((ch, i))
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            out.append((text[start:i], start))
    return out


def _is_word(token: str) -> bool:
    return bool(token) and token[0] not in _SPECIAL


def key_error(key: str) -> str | None:
    """Why ``key`` is not a label key (an optional DNS subdomain prefix and ``/``, then a
    name of at most 63 characters); None when it is one."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"the prefix of the key {key!r} must be a lowercase DNS subdomain"
    if not name or len(name) > 63 or not _NAME.fullmatch(name):
        return (f"the key {key!r} must be at most 63 letters, digits, '-', '_' or '.', "
                "beginning and ending with a letter or digit (after an optional prefix/)")
    return None


def value_error(value: str) -> str | None:
    """Why ``value`` is not a label value (empty, or at most 63 letters, digits, '-', '_'
    or '.', beginning and ending with a letter or digit); None when it is one."""
    if value and (len(value) > 63 or not _NAME.fullmatch(value)):
        return (f"the value {value!r} must be at most 63 letters, digits, '-', '_' or '.', "
                "beginning and ending with a letter or digit")
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def fail(self, why: str) -> SelectorError:
        where = (f"at position {self.tokens[self.at][1] + 1}" if self.at < len(self.tokens)
                 else "at the end")
        return SelectorError(f"invalid label selector {self.text!r}: {why} ({where})")

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.at += 1
        return token

    def key(self) -> str:
        token = self.peek()
        if token is None or not _is_word(token):
            raise self.fail("expected a label key")
        problem = key_error(token)
        if problem is not None:
            raise self.fail(problem)
        self.at += 1
        return token

    def value(self, allow_empty: bool) -> str:
        token = self.peek()
        if token is None or not _is_word(token):
            if allow_empty:
                return ""
            raise self.fail("expected a value")
        problem = value_error(token)
        if problem is not None:
            raise self.fail(problem)
        self.at += 1
        return token

    def values(self, key: str, operator: str) -> tuple[str, ...]:
        if self.take() != "(":
            self.at -= 1
            raise self.fail(f"expected '(' after '{key} {operator}'")
        found: list[str] = []
        while True:
            found.append(self.value(allow_empty=True))
            token = self.take()
            if token == ")":
                break
            if token != ",":
                self.at -= 1
                raise self.fail(f"expected ',' or ')' in the values of '{key} {operator}'")
        if found == [""]:
            self.at -= 1
            raise self.fail(f"'{key} {operator}' needs at least one value")
        return tuple(sorted(set(found)))

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.at += 1
            return Requirement(self.key(), "!")
        key = self.key()
        token = self.peek()
        if token is None or token == ",":
            return Requirement(key, "exists")
        self.at += 1
        if token in ("=", "==", "!="):
            value = self.value(allow_empty=True)
            return Requirement(key, "!=" if token == "!=" else "=", (value,))
        if token in ("in", "notin"):
            return Requirement(key, "in" if token == "in" else "notin",
                               self.values(key, token))
        self.at -= 1
        if token in ("<", ">"):
            raise self.fail(f"the operator {token!r} is not supported")
        raise self.fail(f"expected '=', '==', '!=', 'in', 'notin', ',' or the end after "
                        f"the key {key!r}")

    def selector(self) -> LabelSelector:
        if not self.tokens:
            return LabelSelector()
        found = [self.requirement()]
        while self.peek() is not None:
            if self.take() != ",":
                self.at -= 1
                raise self.fail("expected ',' between requirements")
            found.append(self.requirement())
        return LabelSelector(tuple(found))


def parse_selector(text: str) -> LabelSelector:
    """The selector ``text`` says (empty or blank: every set of labels matches); raises
    SelectorError when it is not a label selector."""
    return _Parser(text).selector()
