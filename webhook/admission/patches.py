"""Minimal JSONPatches over an object's annotations, for the mutating webhook.

Holds ``annotations_patch`` (set or remove some annotations with the fewest ops, none
when they already hold their values) and ``annotation_patch`` (the revisions annotation
alone). It must not decide what the values are (webhook.admission.judge does) and must
not do I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonpatch

from webhook.core.labels import ANNOTATION_REVISIONS


def annotation_patch(obj: Mapping[str, Any], value: str) -> list[dict[str, Any]]:
    """The minimal JSONPatch that sets ANNOTATION_REVISIONS to ``value`` (empty if it is set)."""
    return annotations_patch(obj, {ANNOTATION_REVISIONS: value})


def annotations_patch(
    obj: Mapping[str, Any], wanted: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """The minimal JSONPatch that gives each annotation of ``wanted`` its value (None: absent).

    Empty when every one already has it, so a patched object is never patched again.
    """
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        annotations = metadata.get("annotations")
        # The common shapes, written out: the same ops jsonpatch.make_patch finds by
        # diffing deep copies, at a tenth of the cost.
        if isinstance(annotations, dict):
            ops: list[dict[str, Any]] = []
            for key, value in wanted.items():
                current = annotations.get(key, _ABSENT)
                pointer = _annotation_pointer(key)
                if value is None:
                    if current is not _ABSENT:
                        ops.append({"op": "remove", "path": pointer})
                elif current != value or not isinstance(current, str):
                    op = "add" if current is _ABSENT else "replace"
                    ops.append({"op": op, "path": pointer, "value": value})
            return ops
        if "annotations" not in metadata:
            values = {key: value for key, value in wanted.items() if value is not None}
            if not values:
                return []
            return [{"op": "add", "path": "/metadata/annotations", "value": values}]
    return _diffed_annotations_patch(obj, wanted)


_ABSENT = object()


def _annotation_pointer(key: str) -> str:
    return "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")


def _diffed_annotations_patch(
    obj: Mapping[str, Any], wanted: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """annotations_patch for odd shapes (no metadata object, annotations not an object)."""
    metadata = obj.get("metadata")
    before = {"metadata": metadata if isinstance(metadata, dict) else {}}
    after = copy.deepcopy(before)
    annotations = after["metadata"].get("annotations")
    values = {key: value for key, value in wanted.items() if value is not None}
    if not isinstance(annotations, dict):
        if not values:
            return []  # nothing to set, and there is no annotation to remove
        annotations = after["metadata"]["annotations"] = {}
    for key, value in wanted.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    ops: list[dict[str, Any]] = jsonpatch.make_patch(before, after).patch
    return ops
