"""Spec defaulting and the checks the CRD schema cannot express.

The API server defaults and validates a SomaMemory against the CRD schema before the operator
sees it; the same defaults are applied here so that the renderers never meet a missing field
(and so that an operator running against an older CRD still behaves).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .constants import LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME
from .crd import DNS_1035, MAX_NAME, Schema, spec_schema
from .envvars import env_problems

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


def _check_embedded(spec: Spec) -> list[str]:
    """Without a Milvus server one pod keeps milvus-lite on its volume; a second could not."""
    if spec.get("milvus") or (spec["replicas"] <= 1 and not spec["autoscaling"]["enabled"]):
        return []
    return [
        "spec.replicas: without spec.milvus the server keeps milvus-lite on one volume: set "
        "replicas to 0 or 1 with autoscaling off, or name a Milvus server in spec.milvus"
    ]


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h)$")


def _seconds(duration: Any) -> float | None:
    """A duration as the schema takes it (``30s``, ``500ms``, ``1m``) in seconds, else None."""
    found = _DURATION.match(str(duration))
    return int(found[1]) * _DURATION_UNITS[found[2]] if found else None


def _check_monitoring(monitoring: dict[str, Any]) -> list[str]:
    timeout, interval = _seconds(monitoring["scrapeTimeout"]), _seconds(monitoring["interval"])
    if timeout is None or interval is None:
        return ["spec.monitoring: interval and scrapeTimeout are durations like 30s, 500ms, 1m"]
    if timeout > interval:
        return ["spec.monitoring: scrapeTimeout must not exceed monitoring.interval"]
    return []


def _check_pod_labels(labels: dict[str, str]) -> list[str]:
    taken = sorted(set(labels) & {LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT, LABEL_MANAGED_BY})
    return [f"spec.podLabels: {key} is a label the operator selects its pods by" for key in taken]


_DNS_LABEL = re.compile(DNS_1035)


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
    problems += env_problems(spec.get("env", []))
    problems += _check_embedded(spec)
    problems += _check_pod_labels(spec.get("podLabels") or {})
    problems += _check_monitoring(spec["monitoring"])
    if problems:
        raise SpecError("; ".join(problems))
    return spec
