"""The schema of a SomaMemory's ``spec``: structural, defaulted, validated (CEL included).

Rules the OpenAPI schema cannot say are CEL rules (``x-kubernetes-validations``), checked by the
API server at admission; the operator checks the same things again (:mod:`.spec`), so that a
cluster with an older CRD still refuses what this version would.
"""

from __future__ import annotations

import json
from typing import Any

from .constants import LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME
from .envvars import OWNED_ENV, free_env, secret_variables

Schema = dict[str, Any]

_DNS_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SELECTOR_LABELS = [LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT, LABEL_MANAGED_BY]


def _cel(items: list[str]) -> str:
    """A CEL list literal of strings."""
    return json.dumps(items)


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


def _str(max_length: int = 253, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": max_length, **extra}


def obj(
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


def _string_map(description: str, max_properties: int = 64) -> Schema:
    return {
        "type": "object",
        "additionalProperties": _str(4096),
        "maxProperties": max_properties,
        "description": description,
    }


def _secret_ref(default_key: str, description: str) -> Schema:
    return obj(
        {
            "name": _str(253, minLength=1, pattern=_DNS_NAME),
            "key": _str(253, minLength=1, default=default_key),
        },
        required=["name"],
        description=description,
    )


def _key_ref(kind: str) -> Schema:
    return obj(
        {
            "name": _str(253, minLength=1, pattern=_DNS_NAME),
            "key": _str(253, minLength=1),
            "optional": {"type": "boolean"},
        },
        required=["name", "key"],
        description=f"A key of a {kind} in the SomaMemory's namespace.",
    )


def _quantity() -> Schema:
    return {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$",
    }


def backup_claim_schema() -> Schema:
    """Where backups are kept: a PersistentVolumeClaim, named or created."""
    return obj(
        {
            "name": _str(253, minLength=1, pattern=_DNS_NAME)
            | {"description": "The claim; default <instance>-backups."},
            "size": _quantity()
            | {
                "description": "With a size, a missing claim is created (ReadWriteOnce, kept "
                "when the backups go); without one, the claim must exist."
            },
            "storageClassName": _str(253),
        },
        default={},
        description="The PersistentVolumeClaim export files are written to.",
    )


def _quantities() -> Schema:
    return {"type": "object", "additionalProperties": _quantity()}


def _env() -> Schema:
    owned = {name: OWNED_ENV[name] for name in sorted(OWNED_ENV)}
    item = obj(
        {
            "name": _str(128, pattern=r"^[A-Z][A-Z0-9_]*$"),
            "value": _str(32768),
            "valueFrom": obj(
                {"secretKeyRef": _key_ref("Secret"), "configMapKeyRef": _key_ref("ConfigMap")},
                validations=[
                    {
                        "rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                        "message": "valueFrom takes secretKeyRef or configMapKeyRef",
                    }
                ],
            ),
        },
        required=["name"],
        validations=[
            {
                "rule": "has(self.value) != has(self.valueFrom)",
                "message": "set value or valueFrom, not both or neither",
            },
            {
                "rule": f"!(self.name in {_cel(sorted(owned))})",
                "messageExpression": f"self.name + ' is set by ' + {json.dumps(owned)}[self.name]",
            },
            {
                "rule": f"self.name in {_cel(sorted(set(free_env()) | set(owned)))}",
                "messageExpression": "self.name + ' is not a setting the service reads'",
            },
            {
                "rule": f"!has(self.value) || !(self.name in {_cel(secret_variables())})",
                "messageExpression": "self.name + ' is a secret: pass it with "
                "valueFrom.secretKeyRef, not a value'",
            },
        ],
    )
    return {
        "type": "array",
        "maxItems": 64,
        "description": "Any other setting the service reads (its SOMA_* variables), as a value or "
        "from a Secret or ConfigMap key. Variables that a structured field sets are refused here "
        "(the structured field takes precedence; the message names it). The ConfigMap is "
        "rendered whole: removing an entry removes it from the pods, and any change rolls them.",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }


def _placement() -> dict[str, Schema]:
    """Where the pods run; all of it reaches the server pods, the node part the migration's."""
    toleration = obj(
        {
            "key": _str(),
            "operator": {"type": "string", "enum": ["Exists", "Equal"]},
            "value": _str(),
            "effect": {"type": "string", "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
            "tolerationSeconds": {"type": "integer"},
        }
    )
    spread = obj(
        {
            "maxSkew": _int(minimum=1),
            "topologyKey": _str(316, minLength=1),
            "whenUnsatisfiable": {"type": "string", "enum": ["DoNotSchedule", "ScheduleAnyway"]},
        },
        required=["maxSkew", "topologyKey", "whenUnsatisfiable"],
    ) | {"x-kubernetes-preserve-unknown-fields": True}
    return {
        "nodeSelector": _string_map("Node labels the pods (server and migration) must match."),
        "tolerations": {"type": "array", "maxItems": 32, "items": toleration},
        "affinity": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "description": "A core/v1 Affinity for the server and migration pods.",
        },
        "topologySpreadConstraints": {
            "type": "array",
            "maxItems": 8,
            "items": spread,
            "description": "How the server pods spread. Unset: across nodes (kubernetes.io/"
            "hostname, maxSkew 1, ScheduleAnyway); [] for none. A constraint without a "
            "labelSelector selects this instance's server pods.",
        },
        "priorityClassName": _str(253, pattern=_DNS_NAME),
        "imagePullSecrets": {
            "type": "array",
            "maxItems": 16,
            "items": obj({"name": _str(253, minLength=1, pattern=_DNS_NAME)}, ["name"]),
            "description": "Pull secrets for the server and migration pods.",
        },
        "podAnnotations": _string_map("Annotations on the server and migration pods."),
        "podLabels": _string_map("Labels on the server and migration pods.")
        | {
            "x-kubernetes-validations": [
                {
                    "rule": f"!self.exists(k, k in {_cel(SELECTOR_LABELS)})",
                    "message": "podLabels may not set the app.kubernetes.io labels the operator "
                    "selects its pods by",
                }
            ]
        },
    }


def _monitoring() -> Schema:
    """What the operator creates for Prometheus and Grafana when the Prometheus Operator's
    CRDs are served (see :mod:`.monitoring`)."""
    duration = _str(16, pattern=r"^[0-9]+(ms|s|m|h)$")

    def threshold(default: float, description: str) -> Schema:
        return {"type": "number", "minimum": 0, "default": default, "description": description}

    return obj(
        {
            "enabled": _bool(True)
            | {
                "description": "Create a ServiceMonitor, a PrometheusRule and a Grafana dashboard "
                "ConfigMap when the Prometheus Operator's CRDs exist (false: remove them)."
            },
            "labels": _string_map(
                "Labels on the ServiceMonitor and PrometheusRule, to match your Prometheus's "
                "serviceMonitorSelector and ruleSelector (e.g. release: kube-prometheus-stack)."
            )
            | {"default": {}},
            "interval": duration | {"default": "30s"},
            "scrapeTimeout": duration | {"default": "10s"},
            "alerts": obj(
                {
                    "errorRatio": threshold(0.05, "Share of 5xx answers that alerts."),
                    "latencyP99Seconds": threshold(1.0, "p99 request latency that alerts."),
                    "reconcileBacklog": _int(1000, 0)
                    | {"description": "Memories awaiting their vector write that alert."},
                },
                default={},
            ),
            "dashboard": obj(
                {
                    "enabled": _bool(True),
                    "labels": _string_map(
                        "Labels of the dashboard ConfigMap, which Grafana's sidecar selects."
                    )
                    | {"default": {"grafana_dashboard": "1"}},
                },
                default={},
            ),
        },
        default={},
        description="Monitoring the operator creates for this instance.",
        validations=[
            {
                "rule": "duration(self.scrapeTimeout) <= duration(self.interval)",
                "message": "monitoring.scrapeTimeout must not exceed monitoring.interval",
            }
        ],
    )


def spec_schema() -> Schema:
    """The ``spec`` schema: structural, defaulted, validated."""
    return obj(
        {
            "image": _str(1024, minLength=1, description="Service image."),
            "imagePullPolicy": {
                "type": "string",
                "enum": ["Always", "IfNotPresent", "Never"],
                "default": "IfNotPresent",
            },
            "replicas": _int(2, 0, 100)
            | {"description": "Server pods (the scale subresource's; ignored with autoscaling)."},
            "apiTokenSecretRef": _secret_ref("token", "Secret key holding the API token."),
            "postgres": obj(
                {"urlSecretRef": _secret_ref("url", "Secret key holding POSTGRES_URL.")},
                required=["urlSecretRef"],
            ),
            "redis": obj(
                {
                    "host": _str(minLength=1),
                    "port": _int(6379, 1, 65535),
                    "db": _int(0, 0, 15),
                    "passwordSecretRef": _secret_ref("password", "Secret key of the password."),
                },
                required=["host"],
                description="External Redis; omit for the in-process cache and locks.",
            ),
            "milvus": obj(
                {
                    "uri": _str(2048, minLength=1),
                    "host": _str(minLength=1),
                    "port": _int(19530, 1, 65535),
                    "collection": _str(255, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"),
                    "tokenSecretRef": _secret_ref("token", "Secret key of the Milvus token."),
                },
                description="Milvus server: a URI or a host and port. Omitted, the one server pod "
                "keeps milvus-lite on a PersistentVolumeClaim (see storage).",
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
            "storage": obj(
                {
                    "size": _quantity() | {"default": "10Gi"},
                    "storageClassName": _str(253),
                },
                default={},
                description="The PersistentVolumeClaim of milvus-lite, used without spec.milvus "
                "(kept when the SomaMemory is deleted, like the service chart's).",
            ),
            "batching": obj(
                {
                    "enabled": _bool(False),
                    "size": _int(100, 1, 10000),
                    "flushMs": _int(5, 0, 60000),
                },
                default={},
            ),
            "embeddings": obj(
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
                description="Embedder: the image's local model unless forceHash is true; an "
                "endpoint with SOMA_EMBEDDINGS_URL in env.",
            ),
            "memoryNamespace": _str(64, pattern=r"^[A-Za-z0-9_.\-]{1,64}$", default="default"),
            "logLevel": {
                "type": "string",
                "enum": ["DEBUG", "INFO", "WARNING", "ERROR"],
                "default": "INFO",
            },
            "logJson": _bool(True),
            "resources": obj(
                {"requests": _quantities(), "limits": _quantities()},
                default={
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"memory": "1Gi"},
                },
                description="Requests and limits of the server and migration containers.",
            ),
            **_placement(),
            "autoscaling": obj(
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
            "podDisruptionBudget": obj(
                {"enabled": _bool(False), "minAvailable": _int(1, 0, 100)},
                default={},
            ),
            "migration": obj(
                {
                    "backoffLimit": _int(2, 0, 10),
                    "activeDeadlineSeconds": _int(900, 30, 86400),
                    "ttlSecondsAfterFinished": _int(86400, 0, 604800),
                    "backupFirst": _bool(False)
                    | {
                        "description": "Take a SomaMemoryBackup before each migration of a "
                        "database that has a schema (into backupClaim); the migration waits "
                        "for it and does not run if it fails."
                    },
                    "backupClaim": backup_claim_schema(),
                },
                default={},
            ),
            "service": obj(
                {
                    "type": {
                        "type": "string",
                        "enum": ["ClusterIP", "NodePort", "LoadBalancer"],
                        "default": "ClusterIP",
                    }
                },
                default={},
            ),
            "env": _env(),
            "monitoring": _monitoring(),
        },
        required=["image", "apiTokenSecretRef", "postgres"],
        validations=[
            {
                "rule": "has(self.milvus) || (self.replicas <= 1 && !self.autoscaling.enabled)",
                "message": "without spec.milvus the server keeps milvus-lite on one volume: set "
                "replicas to 0 or 1 with autoscaling off, or name a Milvus server in spec.milvus",
            },
        ],
    )
