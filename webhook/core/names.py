"""The names an Application gives the objects it implies, and who may use them.

Holds the rules that keep every name admission lets through acceptable where it ends up:
the Application's name (the value of label app.oam.dev/name on every object it implies),
a component's name (a Rollout's and a workload's name, a Service's when a port is exposed,
a label value on every pod), the revision names a change creates (a ControllerRevision's
and a Deployment's name, a pod label), and ownership (a component name whose Rollout or
ControllerRevisions another owner controls is taken). Each returns FieldErrors at the field
the name comes from, so an Application the API server or a workload controller would refuse
later is refused at admission instead. The value syntaxes (DNS labels and subdomains,
label values) are webhook.core.checkers. It must not do I/O and must not parse objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from webhook.core import errors as fe
from webhook.core.checkers import DNS1123_LABEL, dns_subdomain
from webhook.core.errors import FieldError
from webhook.core.labels import APP_KIND, IN_PLACE_TYPES
from webhook.core.model import COMPONENTS_PATH, Application, Component
from webhook.core.paths import FieldPath
from webhook.core.revisions import ResolvedRevision
from webhook.core.shapes import is_mapping
from webhook.core.state import ObservedState, OwnerRef

NAME_PATH = FieldPath.root("metadata", "name")
LABEL_VALUE_MAX = 63
# A Service's name is a DNS-1035 label: an RFC 1123 label that starts with a letter.
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A CloneSet's controller labels each pod with "<CloneSet name>-<hash of up to 10
# characters>" (controller-revision-hash, a label value): its name leaves room for that.
CLONESET_NAME_MAX = LABEL_VALUE_MAX - len("-") - 10


def application_name_errors(name: str) -> list[FieldError]:
    """The Application's name is an object name and, on every object it implies, the value
    of label app.oam.dev/name: a DNS-1123 subdomain of at most 63 characters. Empty while
    the API server has still to generate it: nothing to check."""
    if not name:
        return []
    errs = dns_subdomain(name, NAME_PATH)
    if not errs and len(name) > LABEL_VALUE_MAX:
        errs.append(
            fe.invalid(
                NAME_PATH,
                name,
                f"must be no more than {LABEL_VALUE_MAX} characters: it is the value of label"
                " app.oam.dev/name on every object of the Application",
            )
        )
    return errs


def exposes_service(component: Component) -> bool:
    """A port of the component sets ``expose: true``: it is served by a Service named
    after the component."""
    ports = component.properties.get("ports")
    if not isinstance(ports, list | tuple):
        return False
    return any(is_mapping(p) and p.get("expose") is True for p in ports)


def component_name_errors(component: Component, cpath: FieldPath) -> list[FieldError]:
    """Where a component's name becomes more than an RFC 1123 label (validation checks
    that much): a Service's name (DNS-1035), a CloneSet's (room for its pods' revision
    label). A name that is not even a label is reported once, by validation."""
    name = component.name
    if not name or len(name) > LABEL_VALUE_MAX or not DNS1123_LABEL.fullmatch(name):
        return []
    errs: list[FieldError] = []
    # The path is built only for an error: every component of every review comes here.
    if exposes_service(component) and not DNS1035_LABEL.fullmatch(name):
        errs.append(
            fe.invalid(
                cpath.child("name"),
                name,
                "a port sets expose, so this is the name of a Service, a DNS-1035 label: lower"
                " case alphanumeric characters or '-', starting with a letter and ending with"
                " an alphanumeric character",
            )
        )
    if component.type in IN_PLACE_TYPES and len(name) > CLONESET_NAME_MAX:
        errs.append(
            fe.invalid(
                cpath.child("name"),
                name,
                f"must be no more than {CLONESET_NAME_MAX} characters: the CloneSet's pods carry"
                " label controller-revision-hash, <name>-<hash of 10 characters>, which may"
                f" be at most {LABEL_VALUE_MAX}",
            )
        )
    return errs


def revision_name_errors(
    app: Application, resolved: Mapping[str, ResolvedRevision]
) -> list[FieldError]:
    """A generated revision name (``<component>-v<N>``) names a ControllerRevision and a
    Deployment and is a label value on pods: at most 63 characters. Validation leaves
    room for N up to 9999; past that, or when another component's revision names push N
    up, the change is refused at the component's name. (An externalRevision is checked
    where it is written.)"""
    errs: list[FieldError] = []
    for i, component in enumerate(app.components):
        rev = resolved.get(component.name)
        if rev is None or component.external_revision is not None or not rev.is_new:
            continue
        if len(rev.name) > LABEL_VALUE_MAX:
            errs.append(
                fe.invalid(
                    COMPONENTS_PATH.index(i).child("name"),
                    component.name,
                    f"the revision this change creates, {rev.name!r}, would be longer than"
                    f" {LABEL_VALUE_MAX} characters (a label value on its workload and pods):"
                    " set externalRevision",
                )
            )
    return errs


def _foreign(owner: OwnerRef, app_name: str) -> bool:
    return _foreign_owner(owner.kind, owner.name, app_name)


def _foreign_owner(kind: str, name: str, app_name: str) -> bool:
    return not (kind in (APP_KIND, "") and name == app_name)


def ownership_errors(app: Application, observed: ObservedState) -> list[FieldError]:
    """A component name is taken when its Rollout, or any of its ControllerRevisions, is
    controlled by another owner (another Application of the namespace, or anything else):
    the controller never overwrites an object it does not control, so admitting the
    component would admit an Application that cannot be rolled. Objects without a
    controller are nobody's: the Application's reconcile adopts them."""
    errs: list[FieldError] = []
    for i, component in enumerate(app.components):
        if not component.name:
            continue
        holders: dict[OwnerRef, list[str]] = {}
        rollout_owner = observed.rollout_owners.get(component.name)
        if rollout_owner is not None and _foreign(rollout_owner, app.name):
            holders.setdefault(rollout_owner, []).append(f"Rollout {component.name!r}")
        for record in observed.revisions_of(component.name):
            # An OwnerRef only for a foreign owner (rare), not one per revision.
            if record.owner and _foreign_owner(record.owner_kind, record.owner, app.name):
                owner = OwnerRef(record.owner_kind, record.owner)
                holders.setdefault(owner, []).append(f"ControllerRevision {record.name!r}")
        if not holders:
            continue
        claims = "; ".join(
            f"{', '.join(objects)} controlled by {_describe(owner)}"
            for owner, objects in holders.items()
        )
        errs.append(
            fe.invalid(
                COMPONENTS_PATH.index(i).child("name"),
                component.name,
                f"the name is taken in namespace {observed.namespace!r}: {claims}; a component"
                " name belongs to one Application of a namespace",
            )
        )
    return errs


def _describe(owner: OwnerRef) -> str:
    return f"{owner.kind or 'Application'} {owner.name!r}"

