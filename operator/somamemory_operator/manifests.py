"""Pure functions from a SomaMemory (metadata + defaulted spec) to the manifests it owns.

Nothing here talks to the API: the handlers render with these and apply the result.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .constants import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_IMAGE,
    API_VERSION,
    APP_NAME,
    DATA_DIR,
    HTTP_PORT,
    KIND,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGER,
    RUN_AS_USER,
)

Manifest = dict[str, Any]
Meta = dict[str, Any]


def _digest(*parts: Any, size: int = 10) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def labels(meta: Meta, component: str = "server") -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels of every child."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: meta["name"],
        LABEL_COMPONENT: component,
        LABEL_MANAGED_BY: MANAGER,
    }


def selector(meta: Meta) -> dict[str, str]:
    """The pod selector of the Deployment, Service and PodDisruptionBudget (immutable)."""
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: meta["name"], LABEL_COMPONENT: "server"}


def owner_reference(meta: Meta) -> dict[str, Any]:
    """The controller owner reference: deleting the SomaMemory garbage-collects the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(meta: Meta, name: str, component: str = "server") -> dict[str, Any]:
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": labels(meta, component),
        "ownerReferences": [owner_reference(meta)],
    }


def settings_env(spec: dict[str, Any]) -> dict[str, str]:
    """The service's non-secret settings, as the ConfigMap's data."""
    data = {
        "SOMA_HOST": "0.0.0.0",
        "SOMA_PORT": str(HTTP_PORT),
        "SOMA_DATA_DIR": DATA_DIR,
        "SOMA_NAMESPACE": spec["memoryNamespace"],
        "SOMA_LOG_LEVEL": spec["logLevel"],
        "SOMA_LOG_JSON": str(spec["logJson"]).lower(),
        "SOMA_ENABLE_BATCH_UPSERT": str(spec["batching"]["enabled"]).lower(),
        "SOMA_BATCH_SIZE": str(spec["batching"]["size"]),
        "SOMA_BATCH_FLUSH_MS": str(spec["batching"]["flushMs"]),
        "SOMA_EMBEDDING_DIM": str(spec["embeddings"]["dim"]),
    }
    if spec["embeddings"]["forceHash"]:
        # Only when asked: unset, the image's local model (all-MiniLM-L6-v2) embeds by meaning.
        data["SOMA_FORCE_HASH_EMBEDDINGS"] = "true"
    if redis := spec.get("redis"):
        data |= {
            "REDIS_HOST": redis["host"],
            "REDIS_PORT": str(redis["port"]),
            "SOMA_REDIS_DB": str(redis["db"]),
        }
    if milvus := spec.get("milvus"):
        if milvus.get("uri"):
            data["SOMA_MILVUS_URI"] = milvus["uri"]
        else:
            data |= {"SOMA_MILVUS_HOST": milvus["host"], "SOMA_MILVUS_PORT": str(milvus["port"])}
        if milvus.get("collection"):
            data["SOMA_MILVUS_COLLECTION"] = milvus["collection"]
    data |= {item["name"]: item["value"] for item in spec.get("env", [])}
    return data


def _secret_env(name: str, ref: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}}}


def secret_env(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Variables read from Secrets; their values never pass through the operator."""
    env = [
        _secret_env("POSTGRES_URL", spec["postgres"]["urlSecretRef"]),
        _secret_env("SOMA_API_TOKEN", spec["apiTokenSecretRef"]),
    ]
    if (ref := (spec.get("redis") or {}).get("passwordSecretRef")) is not None:
        env.append(_secret_env("SOMA_REDIS_PASSWORD", ref))
    if (ref := (spec.get("milvus") or {}).get("tokenSecretRef")) is not None:
        env.append(_secret_env("SOMA_MILVUS_TOKEN", ref))
    return env


def configmap(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """The ConfigMap holding the service's settings."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(meta, meta["name"]),
        "data": settings_env(spec),
    }


def config_hash(cm: Manifest) -> str:
    """A digest of the settings: a change rolls the pods."""
    return _digest(cm["data"], size=16)


def migration_job_name(meta: Meta, spec: dict[str, Any]) -> str:
    """One Job per (image, database): a new image or database runs a new migration."""
    return f"{meta['name'][:40]}-migrate-{_digest(spec['image'], spec['postgres'])}"


def _container(spec: dict[str, Any], meta: Meta, args: list[str]) -> dict[str, Any]:
    return {
        "name": APP_NAME,
        "image": spec["image"],
        "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["somamemory"],
        "args": args,
        "envFrom": [{"configMapRef": {"name": meta["name"]}}],
        "env": secret_env(spec),
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


def _pod_spec(container: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
        **extra,
    }


def migration_job(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """The Alembic migration Job (``somamemory migrate``), same image and secrets as the server."""
    migration = spec["migration"]
    pod_labels = labels(meta, "migration")
    # ``somamemory migrate`` writes the revision to /dev/termination-log (the default path);
    # :func:`.migration.schema_revision` reads it back from the Pod's terminated state.
    container = _container(spec, meta, ["migrate"]) | {"terminationMessagePolicy": "File"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **_metadata(meta, migration_job_name(meta, spec), "migration"),
            "annotations": {ANNOTATION_IMAGE: spec["image"]},
        },
        "spec": {
            "backoffLimit": migration["backoffLimit"],
            "activeDeadlineSeconds": migration["activeDeadlineSeconds"],
            "ttlSecondsAfterFinished": migration["ttlSecondsAfterFinished"],
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": _pod_spec(container, restartPolicy="Never"),
            },
        },
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def deployment(meta: Meta, spec: dict[str, Any], settings_hash: str) -> Manifest:
    """The server Deployment; only rendered once the image's migration has succeeded."""
    container = _container(spec, meta, ["serve"])
    container |= {
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "startupProbe": _probe("/healthz", 2, 60),
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 3),
    }
    body: dict[str, Any] = {
        "selector": {"matchLabels": selector(meta)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": labels(meta),
                "annotations": {ANNOTATION_CONFIG_HASH: settings_hash},
            },
            "spec": _pod_spec(container, terminationGracePeriodSeconds=30),
        },
    }
    if not spec["autoscaling"]["enabled"]:
        body = {"replicas": spec["replicas"], **body}  # else the HPA owns the replica count
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(meta, meta["name"]),
        "spec": body,
    }


def service(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """The Service in front of the server pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(meta, meta["name"]),
        "spec": {
            "type": spec["service"]["type"],
            "selector": selector(meta),
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(meta: Meta, spec: dict[str, Any]) -> Manifest | None:
    """A CPU-based HorizontalPodAutoscaler, or None when autoscaling is off."""
    scaling = spec["autoscaling"]
    if not scaling["enabled"]:
        return None
    target = scaling["targetCPUUtilizationPercentage"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(meta, meta["name"]),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"]},
            "minReplicas": scaling["minReplicas"],
            "maxReplicas": scaling["maxReplicas"],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            ],
        },
    }


def disruption_budget(meta: Meta, spec: dict[str, Any]) -> Manifest | None:
    """A PodDisruptionBudget, or None when disabled."""
    pdb = spec["podDisruptionBudget"]
    if not pdb["enabled"]:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(meta, meta["name"]),
        "spec": {"minAvailable": pdb["minAvailable"], "selector": {"matchLabels": selector(meta)}},
    }


def rendered_env_names(*manifests: Manifest) -> set[str]:
    """Every environment variable name the given manifests set (ConfigMap data and env)."""
    names: set[str] = set()
    for manifest in manifests:
        if manifest["kind"] == "ConfigMap":
            names |= set(manifest["data"])
            continue
        pod = manifest["spec"]["template"]["spec"]
        for container in pod["containers"]:
            names |= {item["name"] for item in container.get("env", [])}
    return names
