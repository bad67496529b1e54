"""Helm and manifest helpers for the chart tests: render offline, pick objects out."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.support.k8s import helm_binary

CHART = Path(__file__).resolve().parents[2] / "charts" / "somamemory"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "soma"
NAMESPACE = "memory"

Manifest = dict[str, Any]


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm offline; the caller inspects the exit code and output."""
    return subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=60, check=False
    )


def template(*args: str) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart as release `soma` in namespace `memory`."""
    return run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)


def find(docs: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """Every manifest of a kind (and name, when given)."""
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The single manifest of a kind (and name); fails when there are none or several."""
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def api_workload(docs: list[Manifest]) -> Manifest:
    """The API's workload: the StatefulSet of the embedded default or the stateless Deployment."""
    found = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    found = [d for d in found if d["metadata"]["name"] == f"{RELEASE}-somamemory"]
    assert len(found) == 1, f"expected one API workload, found {[d['kind'] for d in found]}"
    return found[0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    """The pod spec of a Deployment, StatefulSet, Job or Pod."""
    spec = workload["spec"]
    return spec if workload["kind"] == "Pod" else spec["template"]["spec"]
