"""The charts and the operator example name the images `docker build` makes, at appVersion."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from tests.chart.helm import CHART, Manifest, api_workload, pod_spec, run_helm

ROOT = CHART.parents[1]
OPERATOR_CHART = ROOT / "charts" / "somamemory-operator"
EXAMPLE = ROOT / "operator" / "examples" / "somamemory.yaml"


def _app_version(chart: str) -> str:
    version: str = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text())[
        "appVersion"
    ]
    return version


def test_service_chart_runs_the_service_image_at_app_version(
    render: Callable[..., list[Manifest]],
) -> None:
    expected = f"ghcr.io/somamemory/somamemory:{_app_version('somamemory')}"
    for scenario in ("defaults", "external"):
        (container,) = pod_spec(api_workload(render(scenario)))["containers"]
        assert container["image"] == expected


def test_operator_chart_runs_the_operator_image_at_app_version() -> None:
    result = run_helm("template", "soma", str(OPERATOR_CHART))
    assert result.returncode == 0, result.stderr
    (deployment,) = [
        d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "Deployment"
    ]
    (container,) = pod_spec(deployment)["containers"]
    version = _app_version("somamemory-operator")
    assert container["image"] == f"ghcr.io/somamemory/somamemory-operator:{version}"


def test_operator_example_runs_the_service_charts_image() -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    assert example["spec"]["image"] == f"ghcr.io/somamemory/somamemory:{_app_version('somamemory')}"
