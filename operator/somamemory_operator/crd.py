"""The SomaMemory CustomResourceDefinition, built here as data: the one source of truth.

``operator/crd/somamemory-crd.yaml`` and the chart's ``crds/`` copy are written from
:func:`crd_yaml` (``python -m somamemory_operator.crd > operator/crd/somamemory-crd.yaml``);
a test keeps both files identical to it.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from .constants import GROUP, KIND, PLURAL, SHORT_NAME, SINGULAR, VERSION

Schema = dict[str, Any]

PHASES = ["Pending", "Migrating", "Deploying", "Ready", "Degraded", "Failed"]
_DNS_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _int(
    default: int | None = None, minimum: int | None = None, maximum: int | None = None
) -> Schema:
    out: Schema = {"type": "integer"}
    if default is not None:
        out["default"] = default
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _bool(default: bool) -> Schema:
    return {"type": "boolean", "default": default}


def _obj(
    properties: dict[str, Schema],
    required: list[str] | None = None,
    validations: list[dict[str, str]] | None = None,
    **extra: Any,
) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = required
    if validations:
        out["x-kubernetes-validations"] = validations  # CEL, checked by the API server
    return out


def _secret_ref(default_key: str, description: str) -> Schema:
    return _obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": _DNS_NAME},
            "key": {"type": "string", "minLength": 1, "default": default_key},
        },
        required=["name"],
        description=description,
    )


def _quantities() -> Schema:
    return {
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$",
        },
    }


def spec_schema() -> Schema:
    """The ``spec`` schema: structural, defaulted, validated."""
    return _obj(
        {
            "image": {"type": "string", "minLength": 1, "description": "Service image."},
            "imagePullPolicy": {
                "type": "string",
                "enum": ["Always", "IfNotPresent", "Never"],
                "default": "IfNotPresent",
            },
            "replicas": _int(2, 0, 100),
            "apiTokenSecretRef": _secret_ref("token", "Secret key holding the API token."),
            "postgres": _obj(
                {"urlSecretRef": _secret_ref("url", "Secret key holding POSTGRES_URL.")},
                required=["urlSecretRef"],
            ),
            "redis": _obj(
                {
                    "host": {"type": "string", "minLength": 1},
                    "port": _int(6379, 1, 65535),
                    "db": _int(0, 0, 15),
                    "passwordSecretRef": _secret_ref("password", "Secret key of the password."),
                },
                required=["host"],
                description="External Redis; omit for the in-process cache and locks.",
            ),
            "milvus": _obj(
                {
                    "uri": {"type": "string", "minLength": 1},
                    "host": {"type": "string", "minLength": 1},
                    "port": _int(19530, 1, 65535),
                    "collection": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"},
                    "tokenSecretRef": _secret_ref("token", "Secret key of the Milvus token."),
                },
                description="Milvus server: a URI or a host and port.",
                validations=[
                    {
                        "rule": "!(has(self.uri) && has(self.host))",
                        "message": "set milvus.uri or milvus.host, not both",
                    },
                    {
                        "rule": "has(self.uri) || has(self.host)",
                        "message": "milvus needs uri or host",
                    },
                ],
            ),
            "batching": _obj(
                {
                    "enabled": _bool(False),
                    "size": _int(100, 1, 10000),
                    "flushMs": _int(5, 0, 60000),
                },
                default={},
            ),
            "embeddings": _obj(
                {
                    "forceHash": _bool(False)
                    | {
                        "description": "Deterministic hash embeddings instead of the image's "
                        "local all-MiniLM-L6-v2 model: they match words, not meaning (tests "
                        "only). false (the default) leaves SOMA_FORCE_HASH_EMBEDDINGS unset."
                    },
                    "dim": _int(384, 2, 32768)
                    | {"description": "Dimension of hash embeddings; the local model's is 384."},
                },
                default={},
                description="Embedder: the image's local model unless forceHash is true.",
            ),
            "memoryNamespace": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9_.\-]{1,64}$",
                "default": "default",
            },
            "logLevel": {
                "type": "string",
                "enum": ["DEBUG", "INFO", "WARNING", "ERROR"],
                "default": "INFO",
            },
            "logJson": _bool(True),
            "resources": _obj(
                {"requests": _quantities(), "limits": _quantities()},
                default={
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"memory": "1Gi"},
                },
            ),
            "autoscaling": _obj(
                {
                    "enabled": _bool(False),
                    "minReplicas": _int(2, 1, 100),
                    "maxReplicas": _int(5, 1, 100),
                    "targetCPUUtilizationPercentage": _int(80, 1, 100),
                },
                default={},
                validations=[
                    {
                        "rule": "self.minReplicas <= self.maxReplicas",
                        "message": "autoscaling.minReplicas must not exceed maxReplicas",
                    }
                ],
            ),
            "podDisruptionBudget": _obj(
                {"enabled": _bool(False), "minAvailable": _int(1, 0, 100)},
                default={},
            ),
            "migration": _obj(
                {
                    "backoffLimit": _int(2, 0, 10),
                    "activeDeadlineSeconds": _int(900, 30, 86400),
                    "ttlSecondsAfterFinished": _int(86400, 0, 604800),
                },
                default={},
            ),
            "service": _obj(
                {
                    "type": {
                        "type": "string",
                        "enum": ["ClusterIP", "NodePort", "LoadBalancer"],
                        "default": "ClusterIP",
                    }
                },
                default={},
            ),
            "env": {
                "type": "array",
                "maxItems": 32,
                "description": "Extra service settings (SOMA_* variables not set by other fields).",
                "items": _obj(
                    {
                        "name": {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]*$"},
                        "value": {"type": "string"},
                    },
                    required=["name", "value"],
                ),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        },
        required=["image", "apiTokenSecretRef", "postgres"],
    )


def status_schema() -> Schema:
    """The ``status`` schema written by the operator."""
    condition = _obj(
        {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "minimum": 0},
        },
        required=["type", "status"],
    )
    return _obj(
        {
            "phase": {"type": "string", "enum": PHASES},
            "message": {"type": "string"},
            "ready": {"type": "string"},
            "replicas": {"type": "integer"},
            "readyReplicas": {"type": "integer"},
            "observedGeneration": {"type": "integer"},
            "migratedImage": {"type": "string"},
            "migrationJob": {"type": "string"},
            "schemaRevision": {"type": "string"},
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        }
    )


def crd() -> dict[str, Any]:
    """The full CustomResourceDefinition object."""
    columns = [
        ("Phase", "string", ".status.phase", 0),
        ("Ready", "string", ".status.ready", 0),
        ("Schema", "string", ".status.schemaRevision", 0),
        ("Image", "string", ".status.migratedImage", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p, "priority": prio}
                        for n, t, p, prio in columns
                    ],
                    "schema": {
                        "openAPIV3Schema": _obj(
                            {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                            required=["spec"],
                        )
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML text checked into the repository."""
    header = "# Generated from somamemory_operator/crd.py (python -m somamemory_operator.crd).\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(crd_yaml())
