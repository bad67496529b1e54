"""Spec defaulting and the checks the CRD schema cannot express.

The API server defaults and validates a SomaMemory against the CRD schema before the operator
sees it; the same defaults are applied here so that the renderers never meet a missing field
(and so that an operator running against an older CRD still behaves).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .constants import KNOWN_ENV, MANAGED_ENV
from .crd import Schema, spec_schema

Spec = dict[str, Any]


class SpecError(ValueError):
    """A spec the operator refuses to apply; the message names the field and the fix."""


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Fill the schema's defaults into ``value`` the way the API server does (recursively)."""
    if schema.get("type") == "object" and isinstance(value, dict):
        out = dict(value)
        for name, sub in schema.get("properties", {}).items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = apply_defaults(out[name], sub)
        return out
    if schema.get("type") == "array" and isinstance(value, list):
        return [apply_defaults(item, schema.get("items", {})) for item in value]
    return value


def _check_milvus(milvus: dict[str, Any] | None) -> list[str]:
    if milvus is None:
        return []
    has_uri, has_host = bool(milvus.get("uri")), bool(milvus.get("host"))
    if has_uri and has_host:
        return ["spec.milvus: set uri or host, not both"]
    if not has_uri and not has_host:
        return ["spec.milvus: needs uri or host"]
    return []


def _check_env(env: list[dict[str, Any]]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, item in enumerate(env):
        name = item.get("name", "")
        where = f"spec.env[{index}].name"
        if name in seen:
            problems.append(f"{where}: {name} is set twice")
        seen.add(name)
        if name not in KNOWN_ENV:
            problems.append(f"{where}: {name} is not a setting the service reads")
        elif name in MANAGED_ENV:
            problems.append(f"{where}: {name} is set by the operator from other spec fields")
    return problems


_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME = 52  # leaves room for the Service, Job and pod name suffixes Kubernetes adds


def check_name(name: str) -> None:
    """A SomaMemory's name becomes a Service name: a DNS-1035 label of at most 52 characters."""
    if len(name) > MAX_NAME or not _DNS_LABEL.match(name):
        raise SpecError(
            f"metadata.name: {name!r} must be a DNS-1035 label (lowercase letters, digits, '-', "
            f"starting with a letter) of at most {MAX_NAME} characters"
        )


def normalize(raw: Spec) -> Spec:
    """Return the defaulted spec, or raise :class:`SpecError` listing every problem found."""
    spec: Spec = apply_defaults(raw or {}, spec_schema())
    problems: list[str] = []
    for field in spec_schema()["required"]:
        if not spec.get(field):
            problems.append(f"spec.{field}: required")
    scaling = spec["autoscaling"]
    if scaling["enabled"] and scaling["minReplicas"] > scaling["maxReplicas"]:
        problems.append(
            "spec.autoscaling: minReplicas "
            f"({scaling['minReplicas']}) exceeds maxReplicas ({scaling['maxReplicas']})"
        )
    problems += _check_milvus(spec.get("milvus"))
    problems += _check_env(spec.get("env", []))
    if problems:
        raise SpecError("; ".join(problems))
    return spec
