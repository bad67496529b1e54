"""Which service settings ``spec.env`` may set, and which the operator sets itself.

The service's variables come from its settings object (:mod:`.service_env`, generated). A
variable that a structured spec field sets belongs to that field: structured fields take
precedence, so ``spec.env`` may not name it (the CRD's CEL rules and :func:`env_problems` say
which field to use), and the renderers drop such an entry even if an older CRD let it through.
"""

from __future__ import annotations

from typing import Any

from .service_env import SECRET_ENV, SERVICE_ENV

# Set by the operator for the pod's own wiring: the probes, the volume, the termination message.
OPERATOR_ENV: dict[str, str] = {
    "SOMA_HOST": "the operator (the pod listens on all addresses)",
    "SOMA_PORT": "the operator (the probes and the Service use port 10101)",
    "SOMA_DATA_DIR": "the operator (the data volume is mounted there)",
    "SOMA_TERMINATION_LOG": "the operator (it reads the migration's revision from there)",
}

# variable -> the structured field that sets it
FIELD_ENV: dict[str, str] = {
    "POSTGRES_URL": "spec.postgres.urlSecretRef",
    "SOMA_POSTGRES_URL": "spec.postgres.urlSecretRef",
    "SOMA_API_TOKEN": "spec.apiTokenSecretRef",
    "REDIS_HOST": "spec.redis.host",
    "SOMA_REDIS_HOST": "spec.redis.host",
    "REDIS_PORT": "spec.redis.port",
    "SOMA_REDIS_PORT": "spec.redis.port",
    "SOMA_REDIS_DB": "spec.redis.db",
    "SOMA_REDIS_PASSWORD": "spec.redis.passwordSecretRef",
    "SOMA_MILVUS_URI": "spec.milvus.uri",
    "SOMA_MILVUS_HOST": "spec.milvus.host",
    "SOMA_MILVUS_PORT": "spec.milvus.port",
    "SOMA_MILVUS_COLLECTION": "spec.milvus.collection",
    "SOMA_MILVUS_TOKEN": "spec.milvus.tokenSecretRef",
    "SOMA_FORCE_HASH_EMBEDDINGS": "spec.embeddings.forceHash",
    "SOMA_EMBEDDING_DIM": "spec.embeddings.dim",
    "SOMA_NAMESPACE": "spec.memoryNamespace",
    "SOMA_LOG_LEVEL": "spec.logLevel",
    "SOMA_LOG_JSON": "spec.logJson",
    "SOMA_ENABLE_BATCH_UPSERT": "spec.batching.enabled",
    "SOMA_BATCH_SIZE": "spec.batching.size",
    "SOMA_BATCH_FLUSH_MS": "spec.batching.flushMs",
}

OWNED_ENV: dict[str, str] = {**OPERATOR_ENV, **FIELD_ENV}


def free_env() -> list[str]:
    """The variables ``spec.env`` may set: every one the service reads, less the owned ones."""
    return sorted(set(SERVICE_ENV) - set(OWNED_ENV))


def secret_variables() -> list[str]:
    """Secret variables: ``spec.env`` passes them with ``valueFrom.secretKeyRef`` only."""
    return sorted(SECRET_ENV)


def user_env(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``spec.env`` entries that apply: owned variables dropped (structured fields win)."""
    return [item for item in spec.get("env", []) if item.get("name") not in OWNED_ENV]


def env_problems(env: list[dict[str, Any]]) -> list[str]:
    """What is wrong with ``spec.env``, one message per problem, naming the entry and the fix."""
    problems = []
    seen: set[str] = set()
    for index, item in enumerate(env):
        name = item.get("name", "")
        where = f"spec.env[{index}]"
        if name in seen:
            problems.append(f"{where}.name: {name} is set twice")
        seen.add(name)
        if name not in SERVICE_ENV:
            problems.append(f"{where}.name: {name} is not a setting the service reads")
        elif name in OWNED_ENV:
            problems.append(f"{where}.name: {name} is set by {OWNED_ENV[name]}")
        has_value, has_ref = "value" in item, "valueFrom" in item
        if has_value == has_ref:
            problems.append(f"{where}: set value or valueFrom, not both or neither")
        elif has_value and name in SECRET_ENV:
            problems.append(
                f"{where}: {name} is a secret: pass it with valueFrom.secretKeyRef, not a value"
            )
        if has_ref:
            refs = item["valueFrom"] or {}
            if ("secretKeyRef" in refs) == ("configMapKeyRef" in refs):
                problems.append(f"{where}.valueFrom: set secretKeyRef or configMapKeyRef")
    return problems
