"""values.yaml documents every key above itself, and the schema knows every key."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.chart.helm import CHART

VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DOCUMENTED = set(re.findall(r"^\s*## @param ([\w.]+) \S", VALUES_TEXT, flags=re.M))


def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Each value's path; a documented mapping counts as one value (its keys are free-form)."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in DOCUMENTED:
            yield from leaves(value, f"{path}.")
        else:
            yield path


def test_every_value_is_documented_by_itself_or_its_parent() -> None:
    undocumented = []
    for path in leaves(VALUES):
        parts = path.split(".")
        if not {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & DOCUMENTED:
            undocumented.append(path)
    assert not undocumented


def test_every_documented_parameter_exists() -> None:
    for path in DOCUMENTED:
        _lookup(path)


def test_schema_describes_every_top_level_value() -> None:
    assert SCHEMA["additionalProperties"] is False
    assert set(VALUES) <= set(SCHEMA["properties"])


def _lookup(path: str) -> Any:
    node: Any = VALUES
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, f"{path} is not in values.yaml"
        node = node[part]
    return node
