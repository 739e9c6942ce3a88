"""Self-managed TLS material: each planned step carried out on real keys and certificates."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509

from webhook.admission.certplan import Policy, Step, next_step
from webhook.admission.selfcerts import Material, carry_out, fingerprint, view_of

T0 = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
POLICY = Policy(
    datetime.timedelta(seconds=20), datetime.timedelta(seconds=10), ("127.0.0.1", "hook.ns.svc")
)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def cas(material: Material) -> list[str]:
    return [fingerprint(c) for c in x509.load_pem_x509_certificates(material.ca_bundle)]


@pytest.fixture(scope="module")
def created() -> Material:
    return carry_out(Material(), Step.CREATE, T0, POLICY)


def test_a_created_secret_holds_one_ca_that_signs_a_pair_for_every_host(
    created: Material,
) -> None:
    view = view_of(created)
    assert view is not None and view.serving is not None
    assert (
        len(view.cas),
        view.signer == view.cas[0].fingerprint,
        view.next,
        view.serving.issuer == view.signer,
        view.serving.key_matches,
        sorted(view.serving.hosts),
        view.serving.not_after == view.cas[0].not_after == at(20),
        abs((view.cas[0].issued_at - T0).total_seconds()) < 1,
        next_step(view, at(1), POLICY),
    ) == (1, True, None, True, True, ["127.0.0.1", "hook.ns.svc"], True, True, None)


def test_staging_trusts_a_second_ca_and_keeps_serving_from_the_first(created: Material) -> None:
    staged = carry_out(created, Step.STAGE, at(6), POLICY)
    view = view_of(staged)
    assert view is not None and view.serving is not None
    assert (
        cas(staged)[0] == cas(created)[0],
        len(view.cas),
        view.next == view.cas[1].fingerprint,
        view.signer == view.cas[0].fingerprint,
        staged.tls_crt == created.tls_crt,
        next_step(view, at(8), POLICY),
        next_step(view, at(11.5), POLICY),
    ) == (True, 2, True, True, True, None, Step.SWITCH)


def test_switching_signs_with_the_staged_ca_and_still_trusts_the_old_one(
    created: Material,
) -> None:
    staged = carry_out(created, Step.STAGE, at(6), POLICY)
    switched = carry_out(staged, Step.SWITCH, at(11.5), POLICY)
    view = view_of(switched)
    assert view is not None and view.serving is not None
    assert (
        cas(switched) == cas(staged),
        view.signer == cas(staged)[1],
        view.next,
        view.serving.issuer == view.signer,
        switched.tls_crt != staged.tls_crt,
        "ca-next.key" in switched.secret_data(),
    ) == (True, True, None, True, True, False)


def test_pruning_drops_only_expired_cas(created: Material) -> None:
    staged = carry_out(created, Step.STAGE, at(6), POLICY)
    switched = carry_out(staged, Step.SWITCH, at(11.5), POLICY)
    pruned = carry_out(switched, Step.PRUNE, at(21), POLICY)
    assert (cas(switched), cas(pruned)) == (cas(staged), cas(staged)[1:])


def test_the_secret_data_round_trips_and_the_bundle_is_base64_of_the_cas(
    created: Material,
) -> None:
    data = created.secret_data()
    assert (
        sorted(data),
        Material.from_secret_data(data) == created,
        base64.b64decode(created.ca_bundle_b64) == created.ca_bundle,
    ) == (["ca.crt", "ca.key", "tls.crt", "tls.key"], True, True)


@pytest.mark.parametrize(
    "data",
    [None, {}, {"ca.crt": "not base64!"}, {"ca.crt": base64.b64encode(b"not a PEM").decode()}],
    ids=["no-secret", "empty", "not-base64", "not-pem"],
)
def test_unreadable_material_reads_as_none_and_is_created_again(
    data: dict[str, str] | None,
) -> None:
    view = view_of(Material.from_secret_data(data))
    assert (view, next_step(view, T0, POLICY)) == (None, Step.CREATE)


def test_a_key_that_belongs_to_no_ca_leaves_no_signer(created: Material) -> None:
    other = carry_out(Material(), Step.CREATE, T0, POLICY)
    view = view_of(Material(created.ca_bundle, other.ca_key, b"", created.tls_crt,
                            created.tls_key))  # fmt: skip
    assert view is not None
    assert (view.signer, next_step(view, at(1), POLICY)) == (None, Step.CREATE)
