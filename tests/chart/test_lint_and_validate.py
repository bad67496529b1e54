"""Every scenario under ci/ lints strictly and renders manifests Kubernetes 1.30 accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.chart.helm import CHART, CI_VALUES, Manifest, run_helm
from tests.support.k8s import validate_manifests

SCENARIOS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def test_the_ci_scenarios_cover_what_the_chart_promises() -> None:
    promised = {"defaults", "external", "existing-secrets", "ha", "ingress", "monitoring"}
    assert promised | {"quickstart"} <= set(SCENARIOS)


def test_the_defaults_scenario_is_the_chart_defaults() -> None:
    assert yaml.safe_load((CHART / "ci" / "defaults-values.yaml").read_text()) in ({}, None)


@pytest.mark.parametrize("values", CI_VALUES, ids=[p.name for p in CI_VALUES])
def test_chart_lints_strictly(values: Path) -> None:
    result = run_helm("lint", "--strict", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_builtin_kinds_validate_strictly(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    docs = render(scenario)
    builtin = [d for d in docs if d["kind"] not in CRD_KINDS]
    assert builtin
    validate_manifests(builtin)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_carries_the_standard_labels(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    for doc in render(scenario):
        labels = doc["metadata"]["labels"]
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert labels["app.kubernetes.io/name"] == "somamemory", where
        assert labels["app.kubernetes.io/instance"] == "soma", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["helm.sh/chart"].startswith("somamemory-"), where
        assert doc["metadata"]["namespace"] == "memory", where
