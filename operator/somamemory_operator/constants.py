"""Names shared by the CRD, the manifests and the handlers."""

from __future__ import annotations

GROUP = "soma.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SomaMemory"
PLURAL = "somamemories"
SINGULAR = "somamemory"
SHORT_NAME = "smem"

MANAGER = "somamemory-operator"
APP_NAME = "somamemory"
HTTP_PORT = 10101
RUN_AS_USER = 10001
DATA_DIR = "/var/lib/somamemory"

# Label and annotation keys the operator writes on its children.
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"
ANNOTATION_CONFIG_HASH = f"{GROUP}/config-hash"
ANNOTATION_IMAGE = f"{GROUP}/image"

# Every variable the service reads (mirrors somamemory.settings.known_env_vars(); a test keeps
# the two in step). The operator image does not ship the service, so it cannot import it.
KNOWN_ENV = frozenset(
    {
        "POSTGRES_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "SOMA_REDIS_PASSWORD",
        "SOMA_REDIS_DB",
        "SOMA_API_TOKEN",
        "SOMA_MILVUS_URI",
        "SOMA_MILVUS_HOST",
        "SOMA_MILVUS_PORT",
        "SOMA_MILVUS_TOKEN",
        "SOMA_MILVUS_COLLECTION",
        "SOMA_FORCE_HASH_EMBEDDINGS",
        "SOMA_EMBEDDING_DIM",
        "SOMA_ENABLE_BATCH_UPSERT",
        "SOMA_BATCH_SIZE",
        "SOMA_BATCH_FLUSH_MS",
        "SOMA_HOST",
        "SOMA_PORT",
        "SOMA_NAMESPACE",
        "SOMA_MAX_PAYLOAD_BYTES",
        "SOMA_LOG_LEVEL",
        "SOMA_LOG_JSON",
        "SOMA_DATA_DIR",
        "SOMA_CACHE_TTL_SECONDS",
    }
)

# Variables set from structured spec fields; spec.env may set only the rest.
MANAGED_ENV = KNOWN_ENV - {"SOMA_MAX_PAYLOAD_BYTES", "SOMA_CACHE_TTL_SECONDS"}
