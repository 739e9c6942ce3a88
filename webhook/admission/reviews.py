"""AdmissionReview wire shapes: parsing requests and building responses (v1 and v1beta1).

Holds ``ReviewRequest`` (the fields of an AdmissionReview request we use), ``parse_review``
(raises BadReview on anything that is not an AdmissionReview) and the response builders
``allowed``, ``denied``, ``invalid`` (field errors, 422), ``errored`` (500) and ``patched``
(JSONPatch). Every response is answered in the apiVersion of the request. It must not
decide admission (that is webhook.admission.judge) and must not do I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.admission.wirejson import dumps
from webhook.core.errors import FieldError

ADMISSION_GROUP = "admission.k8s.io"
SUPPORTED_VERSIONS = (f"{ADMISSION_GROUP}/v1", f"{ADMISSION_GROUP}/v1beta1")
REVIEW_KIND = "AdmissionReview"

# The apiserver drops warnings longer than this (and kubectl shows them one per line).
MAX_WARNING_CHARS = 120
MAX_WARNINGS = 10


class BadReview(ValueError):
    """The body is JSON but not an AdmissionReview request we can answer (HTTP 400)."""


@dataclass(frozen=True)
class ReviewRequest:
    """The parts of an AdmissionReview request that admission needs."""

    api_version: str
    uid: str
    operation: str
    namespace: str = ""
    name: str = ""
    kind: Mapping[str, str] = field(default_factory=dict)
    resource: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    object: Mapping[str, Any] | None = None
    old_object: Mapping[str, Any] | None = None
    # Who sent the write, as the API server authenticated them (username, groups, ...).
    user_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind_name(self) -> str:
        return str(self.kind.get("kind", ""))

    @property
    def object_name(self) -> str:
        """metadata.name of the object (the request's name is empty for generateName)."""
        for obj in (self.object, self.old_object):
            # type() first: a parsed body is plain dicts (isinstance of an ABC is slower).
            if type(obj) is dict or isinstance(obj, Mapping):
                meta = obj.get("metadata")
                if type(meta) is dict or isinstance(meta, Mapping):
                    name = meta.get("name")
                    if isinstance(name, str):
                        return str(name)
        return self.name


def parse_review(body: object) -> ReviewRequest:
    """The request of an AdmissionReview dict; BadReview with a one-line reason otherwise."""
    if not isinstance(body, dict):
        raise BadReview("the body is not a JSON object")
    api_version = body.get("apiVersion")
    if body.get("kind") != REVIEW_KIND:
        raise BadReview(f"kind must be {REVIEW_KIND}, got {_short(body.get('kind'))}")
    if api_version not in SUPPORTED_VERSIONS:
        raise BadReview(
            f"apiVersion must be one of {', '.join(SUPPORTED_VERSIONS)}, got {_short(api_version)}"
        )
    request = body.get("request")
    if not isinstance(request, dict):
        raise BadReview("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is missing or not a string")
    operation = request.get("operation")
    if not isinstance(operation, str) or not operation:
        raise BadReview("request.operation is missing or not a string")
    for key in ("object", "oldObject"):
        if request.get(key) is not None and not isinstance(request.get(key), dict):
            raise BadReview(f"request.{key} is not an object")
    for key in ("kind", "resource", "userInfo"):
        if request.get(key) is not None and not isinstance(request.get(key), dict):
            raise BadReview(f"request.{key} is not an object")
    for key in ("namespace", "name"):
        if request.get(key) is not None and not isinstance(request.get(key), str):
            raise BadReview(f"request.{key} is not a string")
    return ReviewRequest(
        api_version=str(api_version),
        uid=uid,
        operation=operation,
        namespace=request.get("namespace") or "",
        name=request.get("name") or "",
        kind={str(k): str(v) for k, v in (request.get("kind") or {}).items()},
        resource={str(k): str(v) for k, v in (request.get("resource") or {}).items()},
        dry_run=request.get("dryRun") is True,
        object=request.get("object"),
        old_object=request.get("oldObject"),
        user_info=request.get("userInfo") or {},
    )


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def clip_warnings(warnings: Sequence[str]) -> list[str]:
    """At most MAX_WARNINGS warnings, each cut to MAX_WARNING_CHARS, duplicates dropped."""
    out: list[str] = []
    for warning in warnings:
        text = " ".join(warning.split())
        if len(text) > MAX_WARNING_CHARS:
            text = text[: MAX_WARNING_CHARS - 3] + "..."
        if text and text not in out:
            out.append(text)
    return out[:MAX_WARNINGS]


def _envelope(request: ReviewRequest, response: dict[str, Any]) -> dict[str, Any]:
    response["uid"] = request.uid
    return {"apiVersion": request.api_version, "kind": REVIEW_KIND, "response": response}


def allowed(request: ReviewRequest, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """Admit unchanged."""
    response: dict[str, Any] = {"allowed": True}
    if clipped := clip_warnings(warnings):
        response["warnings"] = clipped
    return _envelope(request, response)


def patched(
    request: ReviewRequest, patch: Sequence[Mapping[str, Any]], warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """Admit with a JSONPatch; an empty patch is a plain ``allowed``."""
    if not patch:
        return allowed(request, warnings)
    review = allowed(request, warnings)
    encoded = dumps(list(patch))
    review["response"]["patchType"] = "JSONPatch"
    review["response"]["patch"] = base64.b64encode(encoded).decode("ascii")
    return review


def denied(
    request: ReviewRequest,
    message: str,
    *,
    code: int = 403,
    reason: str = "Forbidden",
    details: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Refuse with a Status (message shown by kubectl after 'denied the request:')."""
    status: dict[str, Any] = {
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        status["details"] = dict(details)
    response: dict[str, Any] = {"allowed": False, "status": status}
    if clipped := clip_warnings(warnings):
        response["warnings"] = clipped
    return _envelope(request, response)


def invalid(
    request: ReviewRequest,
    errors: Sequence[FieldError],
    *,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Refuse an invalid object: code 422, reason Invalid, every field error in the message."""
    kind = request.kind_name or "object"
    group = request.kind.get("group", "")
    qualified = f"{kind}.{group}" if group else kind
    name = request.object_name
    causes = [e.as_cause() for e in errors]
    # str(e) is the cause's field, ": ", and its message: each error is rendered once.
    listed = [f"{c['field']}: {c['message']}" for c in causes]
    body = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
    message = f'{qualified} "{name}" is invalid: {body}'
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return denied(request, message, code=422, reason="Invalid", details=details, warnings=warnings)


def errored(request: ReviewRequest, message: str) -> dict[str, Any]:
    """Refuse because we failed (never allow blindly): code 500, reason InternalError."""
    return denied(request, message, code=500, reason="InternalError")
