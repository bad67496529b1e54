"""Render the chart with the real helm binary, once per value set, for every chart test."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from tests.chart.helm import CHART, Manifest, template


@pytest.fixture(scope="session")
def render() -> Callable[..., list[Manifest]]:
    """Render the chart with a ci/ value file (by short name) plus --set pairs; cached."""
    cache: dict[tuple[str, ...], list[Manifest]] = {}

    def _render(values: str, *sets: str) -> list[Manifest]:
        key = (values, *sets)
        if key not in cache:
            args = ["-f", str(CHART / "ci" / f"{values}-values.yaml")]
            for item in sets:
                args += ["--set", item]
            result = template(*args)
            assert result.returncode == 0, result.stderr
            cache[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[key]

    return _render
