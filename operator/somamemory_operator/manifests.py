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
    ANNOTATION_OPERATOR_VERSION,
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
)
from .envvars import user_env
from .podspec import (
    container,
    data_claim_name,
    embedded_milvus,
    pod_metadata,
    pod_spec,
    spread,
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


def selector_string(meta: Meta) -> str:
    """The pod selector as a label query (``status.selector``, read by the scale subresource)."""
    return ",".join(f"{key}={value}" for key, value in selector(meta).items())


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
    out: dict[str, Any] = {
        "name": name,
        "namespace": meta["namespace"],
        "labels": labels(meta, component),
        "ownerReferences": [owner_reference(meta)],
    }
    if meta.get("version"):
        out["annotations"] = {ANNOTATION_OPERATOR_VERSION: meta["version"]}
    return out


def settings_env(spec: dict[str, Any]) -> dict[str, str]:
    """The service's non-secret settings, as the ConfigMap's data: ``spec.env``'s values, then
    the structured fields' (which take precedence)."""
    data = {item["name"]: item["value"] for item in user_env(spec) if "value" in item}
    data |= {
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
    return data


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


def schema_check_job_name(meta: Meta, spec: dict[str, Any]) -> str:
    """One schema check per image: it only asks the image which revisions it knows."""
    return f"{meta['name'][:40]}-schema-{_digest(spec['image'])}"


def _job(
    meta: Meta, spec: dict[str, Any], name: str, component: str, main: dict[str, Any]
) -> Manifest:
    """A run-once Job of the service image, placed and pulled like the server pods."""
    migration = spec["migration"]
    # A finished Job's pod keeps its termination message: the file the command wrote, else
    # (FallbackToLogsOnError) the tail of its log, which is what a failure has to say.
    main = main | {"terminationMessagePolicy": "FallbackToLogsOnError"}
    metadata = _metadata(meta, name, component)
    metadata["annotations"] = {**metadata.get("annotations", {}), ANNOTATION_IMAGE: spec["image"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": migration["backoffLimit"],
            "activeDeadlineSeconds": migration["activeDeadlineSeconds"],
            "ttlSecondsAfterFinished": migration["ttlSecondsAfterFinished"],
            "template": {
                "metadata": pod_metadata(spec, labels(meta, component), {}),
                "spec": pod_spec(spec, main, {"emptyDir": {}}, restartPolicy="Never"),
            },
        },
    }


def schema_check_job(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """``somamemory migrate --print-revisions``: the revisions the image knows, oldest first, in
    its termination message. It reads no settings and touches no database."""
    main = container(spec, meta, ["migrate", "--print-revisions"], settings=False)
    return _job(meta, spec, schema_check_job_name(meta, spec), "schema-check", main)


def migration_job(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """The Alembic migration Job (``somamemory migrate``), same image and secrets as the server.

    ``somamemory migrate`` writes the revision it reached to /dev/termination-log (the default
    path); :func:`.migration.schema_revision` reads it back from the Pod's terminated state."""
    main = container(spec, meta, ["migrate"])
    return _job(meta, spec, migration_job_name(meta, spec), "migration", main)


def data_claim(meta: Meta, spec: dict[str, Any]) -> Manifest | None:
    """milvus-lite's PersistentVolumeClaim without a Milvus server, else None.

    It has no owner reference, so it outlives the SomaMemory (as the service chart's does)."""
    if not embedded_milvus(spec):
        return None
    storage = spec["storage"]
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage["size"]}},
    }
    if storage.get("storageClassName"):
        claim["storageClassName"] = storage["storageClassName"]
    metadata = _metadata(meta, data_claim_name(meta))
    del metadata["ownerReferences"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": claim,
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def deployment(meta: Meta, spec: dict[str, Any], settings_hash: str) -> Manifest:
    """The server Deployment; only rendered once the image's migration has succeeded.

    ``settings_hash`` (of the ConfigMap) sits in the pod template, so a settings change rolls
    the pods. Without a Milvus server the one pod keeps milvus-lite on a claim and is replaced,
    not surged (two pods cannot open one milvus-lite)."""
    main = container(spec, meta, ["serve"])
    main |= {
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "startupProbe": _probe("/healthz", 2, 60),
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 3),
    }
    if embedded_milvus(spec):
        data: dict[str, Any] = {"persistentVolumeClaim": {"claimName": data_claim_name(meta)}}
        strategy: dict[str, Any] = {"type": "Recreate"}
    else:
        data = {"emptyDir": {}}
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    body: dict[str, Any] = {
        "selector": {"matchLabels": selector(meta)},
        "strategy": strategy,
        "template": {
            "metadata": pod_metadata(spec, labels(meta), {ANNOTATION_CONFIG_HASH: settings_hash}),
            "spec": pod_spec(
                spec,
                main,
                data,
                terminationGracePeriodSeconds=30,
                topologySpreadConstraints=spread(spec, selector(meta)),
            ),
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
        for main in pod["containers"]:
            names |= {item["name"] for item in main.get("env", [])}
    return names
