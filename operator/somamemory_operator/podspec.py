"""The pod template parts shared by the server Deployment and the Jobs: container, security,
settings, volumes and placement. Pure functions from the defaulted spec."""

from __future__ import annotations

from typing import Any

from .constants import APP_NAME, DATA_DIR, RUN_AS_USER
from .envvars import user_env

Spec = dict[str, Any]
Meta = dict[str, Any]


def _secret_env(name: str, ref: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}}}


def referenced_env(spec: Spec) -> list[dict[str, Any]]:
    """Variables read from Secrets or ConfigMaps; their values never pass through the operator.

    The structured fields' Secrets first, then ``spec.env``'s ``valueFrom`` entries (a container's
    ``env`` wins over its ``envFrom``, so entries a structured field owns are dropped)."""
    env = [
        _secret_env("POSTGRES_URL", spec["postgres"]["urlSecretRef"]),
        _secret_env("SOMA_API_TOKEN", spec["apiTokenSecretRef"]),
    ]
    if (ref := (spec.get("redis") or {}).get("passwordSecretRef")) is not None:
        env.append(_secret_env("SOMA_REDIS_PASSWORD", ref))
    if (ref := (spec.get("milvus") or {}).get("tokenSecretRef")) is not None:
        env.append(_secret_env("SOMA_MILVUS_TOKEN", ref))
    env += [
        {"name": item["name"], "valueFrom": item["valueFrom"]}
        for item in user_env(spec)
        if "valueFrom" in item
    ]
    return env


def embedded_milvus(spec: Spec) -> bool:
    """True when no Milvus server is named: the server keeps milvus-lite on its data volume."""
    return not spec.get("milvus")


def data_claim_name(meta: Meta) -> str:
    """The PersistentVolumeClaim of milvus-lite (embedded Milvus only)."""
    return f"{meta['name']}-data"


def container(spec: Spec, meta: Meta, args: list[str], settings: bool = True) -> dict[str, Any]:
    """The service container; ``settings=False`` for a command that reads no settings."""
    out: dict[str, Any] = {
        "name": APP_NAME,
        "image": spec["image"],
        "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["somamemory"],
        "args": args,
    }
    if settings:
        out |= {"envFrom": [{"configMapRef": {"name": meta["name"]}}], "env": referenced_env(spec)}
    return out | {
        "resources": spec["resources"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }


def placement(spec: Spec) -> dict[str, Any]:
    """Node choice, priority and pull secrets: for every pod the instance runs."""
    out: dict[str, Any] = {}
    for field in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if spec.get(field):
            out[field] = spec[field]
    if spec.get("imagePullSecrets"):
        out["imagePullSecrets"] = [{"name": s["name"]} for s in spec["imagePullSecrets"]]
    return out


def spread(spec: Spec, selector: dict[str, str]) -> list[dict[str, Any]]:
    """The server pods' topology spread: the spec's, else one pod per node where possible."""
    constraints = spec.get("topologySpreadConstraints")
    if constraints is None:
        constraints = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ]
    return [{"labelSelector": {"matchLabels": selector}} | c for c in constraints]


def pod_metadata(spec: Spec, labels: dict[str, str], annotations: dict[str, str]) -> Meta:
    """Pod labels and annotations: the spec's, with the operator's own winning."""
    out: Meta = {"labels": {**(spec.get("podLabels") or {}), **labels}}
    merged = {**(spec.get("podAnnotations") or {}), **annotations}
    if merged:
        out["annotations"] = merged
    return out


def pod_spec(spec: Spec, main: dict[str, Any], data: dict[str, Any], **extra: Any) -> Spec:
    """A non-root pod with a writable /tmp and ``data`` as its data volume."""
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,
        "containers": [main],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "data", **data}],
        **placement(spec),
        **extra,
    }
