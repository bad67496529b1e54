"""The CRD's CEL rules, evaluated offline (cel-python) as the API server would at admission:
after defaulting, each rule against its own node. Valid specs pass; each invalid one is refused
with its message, and the operator's own checks (for clusters with an older CRD) agree."""

from __future__ import annotations

import copy
from typing import Any

import celpy
import pytest
import yaml

from somamemory_operator.crd import crd
from somamemory_operator.envvars import free_env
from somamemory_operator.service_env import SECRET_ENV
from somamemory_operator.spec import SpecError, apply_defaults, check_name, normalize
from tests.operator.test_operator_manifests import EXAMPLE

ENV = celpy.Environment()


def _schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _rules(schema: Any) -> list[dict[str, str]]:
    """Every rule anywhere in the schema."""
    if isinstance(schema, list):
        return [rule for item in schema for rule in _rules(item)]
    if not isinstance(schema, dict):
        return []
    found = list(schema.get("x-kubernetes-validations", []))
    for key, value in schema.items():
        if key != "x-kubernetes-validations":
            found += _rules(value)
    return found


def _evaluate(expression: str, value: Any) -> Any:
    return ENV.program(ENV.compile(expression)).evaluate({"self": celpy.json_to_cel(value)})


def cel_errors(schema: dict[str, Any], value: Any) -> list[str]:
    """The messages of every rule ``value`` breaks, walking the schema as the API server does."""
    errors: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        if not bool(_evaluate(rule["rule"], value)):
            message = rule.get("message") or str(_evaluate(rule["messageExpression"], value))
            errors.append(message)
    if isinstance(value, dict):
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                errors += cel_errors(sub, item)
    elif isinstance(value, list):
        for item in value:
            errors += cel_errors(schema.get("items", {}), item)
    return errors


def _admit(obj: dict[str, Any]) -> list[str]:
    return cel_errors(_schema(), apply_defaults(obj, _schema()))


def _object(spec_changes: dict[str, Any] | None = None, name: str = "memory") -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    doc["metadata"]["name"] = name
    doc["spec"] |= spec_changes or {}
    return doc


def test_every_rule_compiles() -> None:
    rules = _rules(_schema())
    assert len(rules) >= 10
    for rule in rules:
        ENV.compile(rule["rule"])
        if "messageExpression" in rule:
            ENV.compile(rule["messageExpression"])


VALID = {
    "the example": {},
    "every free setting": {
        "env": [
            {"name": v, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
            if v in SECRET_ENV
            else {"name": v, "value": "1"}
            for v in free_env()
        ]
    },
    "a ConfigMap ref": {
        "env": [
            {"name": "SOMA_MAX_TOP_K", "valueFrom": {"configMapKeyRef": {"name": "t", "key": "k"}}}
        ]
    },
    "one embedded pod": {"milvus": None, "replicas": 1, "autoscaling": {"enabled": False}},
    "pod labels of its own": {"podLabels": {"team": "agents"}},
    "a scrape as long as its interval": {"monitoring": {"interval": "1m", "scrapeTimeout": "60s"}},
}


@pytest.mark.parametrize("changes", VALID.values(), ids=VALID.keys())
def test_valid_specs_are_admitted(changes: dict[str, Any]) -> None:
    doc = _object({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        del doc["spec"][key]
    assert _admit(doc) == []
    normalize(doc["spec"])


INVALID = {
    "an owned setting": (
        {"env": [{"name": "SOMA_LOG_LEVEL", "value": "DEBUG"}]},
        "SOMA_LOG_LEVEL is set by spec.logLevel",
    ),
    "a pod-wiring setting": (
        {"env": [{"name": "SOMA_PORT", "value": "1"}]},
        "SOMA_PORT is set by the operator",
    ),
    "an unknown setting": (
        {"env": [{"name": "SOMA_NOPE", "value": "1"}]},
        "SOMA_NOPE is not a setting the service reads",
    ),
    "a secret as a value": (
        {"env": [{"name": "SOMA_EMBEDDINGS_API_KEY", "value": "sk"}]},
        "SOMA_EMBEDDINGS_API_KEY is a secret: pass it with valueFrom.secretKeyRef",
    ),
    "value and valueFrom": (
        {
            "env": [
                {
                    "name": "SOMA_MAX_TOP_K",
                    "value": "1",
                    "valueFrom": {"configMapKeyRef": {"name": "t", "key": "k"}},
                }
            ]
        },
        "set value or valueFrom, not both or neither",
    ),
    "two refs in one valueFrom": (
        {
            "env": [
                {
                    "name": "SOMA_MAX_TOP_K",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "t", "key": "k"},
                        "secretKeyRef": {"name": "s", "key": "k"},
                    },
                }
            ]
        },
        "valueFrom takes secretKeyRef or configMapKeyRef",
    ),
    "milvus uri and host": (
        {"milvus": {"uri": "http://m:19530", "host": "m"}},
        "set milvus.uri or milvus.host, not both",
    ),
    "milvus without either": ({"milvus": {"port": 19530}}, "milvus needs uri or host"),
    "min above max": (
        {"autoscaling": {"enabled": True, "minReplicas": 9, "maxReplicas": 3}},
        "autoscaling.minReplicas must not exceed maxReplicas",
    ),
    "two embedded pods": (
        {"milvus": None, "replicas": 2, "autoscaling": {"enabled": False}},
        "without spec.milvus the server keeps milvus-lite on one volume",
    ),
    "autoscaling embedded": (
        {"milvus": None, "replicas": 1, "autoscaling": {"enabled": True}},
        "without spec.milvus the server keeps milvus-lite on one volume",
    ),
    "a scrape longer than its interval": (
        {"monitoring": {"interval": "5s", "scrapeTimeout": "10s"}},
        "scrapeTimeout must not exceed monitoring.interval",
    ),
    "a selector label": (
        {"podLabels": {"app.kubernetes.io/instance": "other"}},
        "podLabels may not set the app.kubernetes.io labels",
    ),
}


@pytest.mark.parametrize(("changes", "message"), INVALID.values(), ids=INVALID.keys())
def test_invalid_specs_are_refused_at_admission_and_by_the_operator(
    changes: dict[str, Any], message: str
) -> None:
    doc = _object({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        del doc["spec"][key]
    errors = _admit(doc)
    assert any(message in error for error in errors), errors
    with pytest.raises(SpecError):
        normalize(doc["spec"])


@pytest.mark.parametrize("name", ["m" * 53, "Memory", "1memory", "memory.one", "memory-"])
def test_names_that_cannot_name_a_service_are_refused(name: str) -> None:
    errors = _admit(_object(name=name))
    assert any("must be a DNS-1035 label" in error for error in errors), errors
    with pytest.raises(SpecError):
        check_name(name)


def test_the_longest_name_is_admitted() -> None:
    assert _admit(_object(name="m" * 52)) == []


def _without_transition_rules(schema: Any) -> Any:
    """The schema less ``oldSelf`` rules (they need an update to evaluate)."""
    if isinstance(schema, list):
        return [_without_transition_rules(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _without_transition_rules(v) for k, v in schema.items()}
    if "x-kubernetes-validations" in out:
        out["x-kubernetes-validations"] = [
            r for r in out["x-kubernetes-validations"] if "oldSelf" not in r["rule"]
        ]
    return out


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"instance": "memory", "backup": "monday"}, None),
        ({"instance": "memory", "file": {"claimName": "c", "path": "a/x.jsonl"}}, None),
        ({"instance": "memory"}, "name a backup or a file"),
        (
            {"instance": "memory", "backup": "b", "file": {"claimName": "c", "path": "x"}},
            "name a backup or a file",
        ),
        ({"instance": "memory", "file": {"claimName": "c", "path": "a/../x"}}, "may not hold .."),
    ],
)
def test_a_restore_names_one_source(spec: dict[str, Any], problem: str | None) -> None:
    from somamemory_operator.task_crd import restore_spec

    schema = _without_transition_rules(restore_spec())
    errors = cel_errors(schema, apply_defaults(spec, schema))
    assert errors == ([] if problem is None else [e for e in errors if problem in e]) and (
        problem is None or errors
    )
    requests = [r["rule"] for r in _rules(restore_spec())]
    assert "self == oldSelf" in requests  # a request's spec cannot change once made
