"""Self-managed TLS decisions: when to rotate, what the bundle patch is, what the flags mean."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from webhook.admission.certplan import (
    CaView,
    CertView,
    ConfigurationRef,
    Policy,
    ServingView,
    Step,
    ca_bundle_patch,
    check_interval,
    next_step,
    parse_configurations,
    parse_duration,
)
from webhook.core.errors import InputError

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
HOSTS = ("127.0.0.1", "oam.svc")
# validity 20 s, rotate 10 s before: a staged CA is trusted lead = 5 s before it signs.
POLICY = Policy(datetime.timedelta(seconds=20), datetime.timedelta(seconds=10), HOSTS)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def ca(name: str, made: float, validity: float = 20) -> CaView:
    return CaView(name, at(made), at(made + validity))


def serving(issuer: str | None, ends: float, **changes: Any) -> ServingView:
    base = ServingView(issuer, at(ends), frozenset(HOSTS), key_matches=True)
    return dataclasses.replace(base, **changes)


FRESH = CertView((ca("A", 0),), "A", None, serving("A", 20))
STAGED = CertView((ca("A", 0), ca("B", 5)), "A", "B", serving("A", 20))


@pytest.mark.parametrize(
    ("view", "now", "step"),
    [
        (None, 0, Step.CREATE),
        (dataclasses.replace(FRESH, signer=None), 1, Step.CREATE),
        (FRESH, 20, Step.CREATE),
        (FRESH, 1, None),
        (FRESH, 5.5, Step.STAGE),
        (STAGED, 9, None),
        (STAGED, 10.5, Step.SWITCH),
        # staged only 1.5 s ago: the API server may not trust B yet, so A keeps signing
        (dataclasses.replace(STAGED, cas=(ca("A", 0), ca("B", 9))), 10.5, None),
        # ...unless the serving certificate is over anyway
        (dataclasses.replace(STAGED, cas=(ca("A", 0), ca("B", 9)), serving=serving("A", 10)),
         10.5, Step.SWITCH),
        (dataclasses.replace(FRESH, serving=None), 1, Step.REISSUE),
        (dataclasses.replace(FRESH, serving=serving("Z", 20)), 1, Step.REISSUE),
        (dataclasses.replace(FRESH, serving=serving("A", 20, key_matches=False)), 1, Step.REISSUE),
        (dataclasses.replace(FRESH, serving=serving("A", 20, hosts=frozenset({"127.0.0.1"}))),
         1, Step.REISSUE),
        (dataclasses.replace(FRESH, serving=serving("A", 10.5)), 1, Step.REISSUE),
        (CertView((ca("old", -15), ca("A", 0)), "A", None, serving("A", 20)), 5, Step.PRUNE),
    ],
    ids=[
        "nothing", "no-signer-key", "signer-expired", "fresh", "stage-next", "staged-waits",
        "switch", "staged-too-recently", "serving-over-switches-early", "no-serving",
        "serving-from-another-ca", "serving-key-mismatch", "host-missing", "serving-ends-soon",
        "expired-ca-pruned",
    ],
)  # fmt: skip
def test_the_next_step_follows_the_timeline(
    view: CertView | None, now: float, step: Step | None
) -> None:
    assert next_step(view, at(now), POLICY) == step


def _simulate(policy: Policy, seconds: float, tick: float) -> list[tuple[float, CertView]]:
    """Drive next_step over plain views, as the manager would, recording every state."""
    view = None
    history: list[tuple[float, CertView]] = []
    made = 0
    now = 0.0
    validity = policy.validity.total_seconds()
    while now <= seconds:
        for _ in range(len(Step)):
            step = next_step(view, at(now), policy)
            if step is None:
                break
            made += 1
            name = f"ca{made}"
            if step is Step.CREATE:
                view = CertView((ca(name, now, validity),), name, None,
                                serving(name, now + validity))
            elif step is Step.STAGE:
                assert view is not None
                view = dataclasses.replace(view, cas=(*view.cas, ca(name, now, validity)),
                                           next=name)
            elif step is Step.SWITCH:
                assert view is not None and view.next is not None
                ends = min(now + validity, view.ca(view.next).not_after.timestamp()  # type: ignore[union-attr]
                           - T0.timestamp())
                view = dataclasses.replace(view, signer=view.next, next=None,
                                           serving=serving(view.next, ends))
            elif step is Step.REISSUE:
                assert view is not None and view.signer is not None
                ends = min(now + validity, view.ca(view.signer).not_after.timestamp()  # type: ignore[union-attr]
                           - T0.timestamp())
                view = dataclasses.replace(view, serving=serving(view.signer, ends))
            else:
                assert view is not None
                view = dataclasses.replace(
                    view, cas=tuple(c for c in view.cas if c.not_after > at(now))
                )
        assert view is not None
        history.append((now, view))
        now += tick
    return history  # fmt: skip


@pytest.mark.parametrize(
    ("validity", "rotate_before", "tick"),
    [
        (20, 10, 2.5),  # check_interval's tick for these
        (60, 10, 2.5),
        # a year, replaced 30 days before: ticks of an hour (the manager's are a minute)
        (3600 * 24 * 365, 3600 * 24 * 30, 3600),
    ],
)
def test_every_serving_certificate_is_trusted_before_it_is_served_and_after_it_is_replaced(
    validity: int, rotate_before: int, tick: float
) -> None:
    policy = Policy(
        datetime.timedelta(seconds=validity), datetime.timedelta(seconds=rotate_before), HOSTS
    )
    history = _simulate(policy, validity * 5, tick)
    problems = []
    trusted_since: dict[str, float] = {}
    previous: CertView | None = None
    for now, view in history:
        for c in view.cas:
            trusted_since.setdefault(c.fingerprint, now)
        assert view.serving is not None
        signer = view.serving.issuer
        # A new signer must have been in the bundle for `lead` before it signs...
        if previous is not None and previous.serving is not None \
                and previous.serving.issuer != signer:
            if now - trusted_since[str(signer)] < policy.lead.total_seconds() - tick:
                problems.append(f"{now}: {signer} signs {now - trusted_since[str(signer)]}s after "
                                "it was trusted")
            # ...and a replica still serving the previous certificate (until its next look,
            # one tick later) must still be trusted and in date.
            old = previous.serving
            if old.not_after <= at(now + tick) or old.issuer not in {c.fingerprint
                                                                     for c in view.cas}:
                problems.append(f"{now}: the previous certificate is no longer usable")
        if view.serving.not_after <= at(now):
            problems.append(f"{now}: serving an expired certificate")
        previous = view
    switches = len({v.signer for _, v in history})
    assert (problems, switches >= 4) == ([], True)  # fmt: skip


@pytest.mark.parametrize(
    ("configuration", "patch"),
    [
        (
            {"metadata": {"resourceVersion": "7"},
             "webhooks": [{"name": "a", "clientConfig": {"url": "u", "caBundle": "NEW"}}]},
            [],
        ),
        (
            {"metadata": {"resourceVersion": "7"},
             "webhooks": [{"name": "a", "clientConfig": {"url": "u", "caBundle": "NEW"}},
                          {"name": "b", "clientConfig": {"url": "u"}}]},
            [{"op": "replace", "path": "/metadata/resourceVersion", "value": "7"},
             {"op": "test", "path": "/webhooks/1/name", "value": "b"},
             {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "NEW"}],
        ),
        (
            {"metadata": {}, "webhooks": [{"name": "a", "clientConfig": {"caBundle": "OLD"}}]},
            [{"op": "test", "path": "/webhooks/0/name", "value": "a"},
             {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "NEW"}],
        ),
        ({"metadata": {"resourceVersion": "1"}, "webhooks": []}, []),
    ],
    ids=["all-hold-it", "one-lacks-it", "no-version", "no-webhooks"],
)  # fmt: skip
def test_the_patch_puts_the_bundle_only_where_it_is_missing(
    configuration: dict[str, Any], patch: list[dict[str, Any]]
) -> None:
    assert ca_bundle_patch(configuration, "NEW") == patch


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20s", 20), ("8760h", 8760 * 3600), ("1h30m", 5400), ("1.5s", 1.5), ("500ms", 0.5)],
)
def test_durations_read_as_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "20", "1d", "s", "-5s", "0s", "5 s"])
def test_a_bad_duration_names_the_flag(text: str) -> None:
    with pytest.raises(InputError, match="--cert-validity"):
        parse_duration(text, "--cert-validity")


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("mutating/a,validating/b",
         (ConfigurationRef("mutating", "a"), ConfigurationRef("validating", "b"))),
        ("MutatingWebhookConfiguration/a, mutating/a",
         (ConfigurationRef("mutating", "a"),)),
    ],
)  # fmt: skip
def test_configurations_are_kind_slash_name(
    text: str, refs: tuple[ConfigurationRef, ...]
) -> None:
    assert parse_configurations(text) == refs


@pytest.mark.parametrize("text", ["a", "pods/a", "mutating/", "mutating/a/b", " , "])
def test_a_bad_configuration_list_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(InputError, match="--webhook-configurations"):
        parse_configurations(text)


@pytest.mark.parametrize(
    ("validity", "rotate_before", "hosts", "message"),
    [
        (20, 20, HOSTS, "--rotate-before"),
        (20, 30, HOSTS, "--rotate-before"),
        (20, 10, (), "--cert-hosts"),
    ],
)
def test_a_policy_that_cannot_rotate_is_refused(
    validity: int, rotate_before: int, hosts: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        Policy(datetime.timedelta(seconds=validity), datetime.timedelta(seconds=rotate_before),
               hosts)  # fmt: skip


@pytest.mark.parametrize(
    ("rotate_before", "interval"), [(2, 1.0), (10, 2.5), (120, 30.0), (3600 * 24 * 30, 60.0)]
)
def test_the_secret_is_looked_at_a_quarter_of_rotate_before_within_bounds(
    rotate_before: int, interval: float
) -> None:
    policy = Policy(
        datetime.timedelta(seconds=rotate_before * 2), datetime.timedelta(seconds=rotate_before),
        HOSTS,
    )
    assert check_interval(policy) == interval
