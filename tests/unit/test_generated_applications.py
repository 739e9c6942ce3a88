"""The generator of Applications at the limits (tests.fixtures.generated) is worth its
cluster time: everything it makes is admitted and renders, and it reaches every limit."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.fixtures.generated import INT32_MAX, valid_applications
from webhook.admission.judge import judge
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer

RENDERER = Renderer()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=valid_applications())
def test_every_generated_application_is_admitted_and_renders(raw: dict[str, Any]) -> None:
    verdict = judge(raw, ObservedState(), RENDERER)
    assert verdict.errors == []
    assert verdict.app is not None
    assert RENDERER.render_application(verdict.app, ObservedState())


def test_the_generated_applications_reach_the_limits() -> None:
    # The same 30 examples the cluster test sends to the API server (derandomized).
    seen = {"long names": False, "int32 sizes": False, "exposed ports": False,
            "clonesets": False, "dotted app names": False}

    # The machine may be busy: a slow generation is not a failure of the generator.
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(raw=valid_applications())
    def look(raw: dict[str, Any]) -> None:
        comps = raw["spec"]["components"]
        seen["long names"] |= any(len(c["name"]) >= 52 or len(c.get("externalRevision", "")) == 63
                                  for c in comps)
        seen["int32 sizes"] |= any(t["properties"]["targetSize"] == INT32_MAX
                                   for c in comps for t in c.get("traits", []))
        seen["exposed ports"] |= any(p.get("expose") is True for c in comps
                                     for p in c["properties"].get("ports", []))
        seen["clonesets"] |= any(c["type"] == "cloneset" for c in comps)
        seen["dotted app names"] |= "." in raw["metadata"]["name"]

    look()
    assert seen == dict.fromkeys(seen, True)
