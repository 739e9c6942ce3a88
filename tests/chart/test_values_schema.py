"""Bad chart values are refused before anything reaches the cluster, with a clear reason."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures import chart as m

CA = m.example_ca_bundle()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"webhook": {"replicas": "two"}}, "replicas"),
        ({"controller": {"replicas": -1}}, "replicas"),
        ({"certs": {"mode": "vault"}}, "mode"),
        ({"webhook": {"failurePolicy": "Sometimes"}}, "failurePolicy"),
        ({"webhook": {"timeoutSeconds": 60}}, "timeoutSeconds"),
        ({"webhook": {"url": "http://127.0.0.1:9443"}, "certs": {"caBundle": CA}}, "url"),
        ({"crds": {"install": "yes"}}, "install"),
        ({"crds": {"keep": 1}}, "keep"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"certs": {"caBundle": "not base64!"}}, "caBundle"),
        ({"replicas": 2}, "replicas"),
        ({"webhook": {"replica": 2}}, "replica"),
        ({"tolerations": {"key": "x"}}, "tolerations"),
        ({"controller": {"progressDeadlineSeconds": -1}}, "progressDeadlineSeconds"),
        ({"controller": {"revisionHistoryLimit": -1}}, "revisionHistoryLimit"),
        ({"controller": {"healthPort": 0}}, "healthPort"),
        # the per-component knobs, the image digest, the controller's budget, helm test
        ({"webhook": {"extraArgs": [5]}}, "extraArgs"),
        ({"controller": {"extraArgs": "--verbose"}}, "extraArgs"),
        ({"webhook": {"extraVolumes": [{"name": "only-a-name"}]}}, "extraVolumes"),
        ({"controller": {"extraVolumes": [{"name": "Bad_Name", "emptyDir": {}}]}}, "extraVolumes"),
        ({"webhook": {"extraVolumeMounts": [{"name": "x"}]}}, "mountPath"),
        ({"controller": {"extraVolumeMounts": [{"name": "x", "mountPath": "rel"}]}}, "mountPath"),
        ({"webhook": {"extraEnv": [{"value": "x"}]}}, "name"),
        ({"controller": {"podLabels": {"replicas": 2}}}, "podLabels"),
        ({"webhook": {"topologySpreadConstraints": [{"maxSkew": 1}]}}, "topologyKey"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"image": {"digest": "sha256:abc"}}, "digest"),
        ({"controller": {"podDisruptionBudget": {"minAvailable": "half"}}}, "minAvailable"),
        ({"controller": {"podDisruptionBudget": {"enable": True}}}, "enable"),
        ({"tests": {"enabled": "yes"}}, "enabled"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_values_of_the_wrong_shape_are_rejected_by_the_schema(
    values: dict[str, Any], named: str
) -> None:
    result = m.template(values)
    assert (result.returncode != 0, "schema" in result.stderr, named in result.stderr) == (
        True,
        True,
        True,
    ), result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"webhook": {"url": "https://127.0.0.1:9443"}},
            "webhook.url is set: certs.caBundle must hold",
        ),
        (
            {"certs": {"mode": "external", "secretName": "tls"}},
            "certs.mode=external: certs.caBundle must hold",
        ),
        (
            {"certs": {"mode": "external", "caBundle": CA}},
            "certs.mode=external: certs.secretName must name",
        ),
        (
            {"certs": {"mode": "external", "secretName": "tls", "caBundle": "aGVsbG8="}},
            "certs.caBundle must be base64 of a PEM certificate",
        ),
    ],
    ids=["url-without-ca", "external-without-ca", "external-without-secret", "ca-not-pem"],
)
def test_values_that_do_not_fit_together_are_explained(
    values: dict[str, Any], message: str
) -> None:
    result = m.template(values)
    assert (result.returncode, message in result.stderr) == (1, True), result.stderr


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"webhook": {"replicas": 3, "failurePolicy": "Ignore", "timeoutSeconds": 30}},
        {"webhook": {"url": "https://127.0.0.1:9443"}, "certs": {"caBundle": CA}},
        {"certs": {"mode": "external", "secretName": "tls", "caBundle": CA}},
        {"certs": {"mode": "cert-manager"}},
        {"crds": {"install": False, "keep": False}, "rbac": {"create": False}},
        {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1}}},
    ],
    ids=["defaults", "tuned", "url", "external", "cert-manager", "bare", "resources"],
)
def test_documented_values_are_accepted(values: dict[str, Any]) -> None:
    result = m.template(values)
    assert (result.returncode, result.stderr) == (0, "")
