"""Every environment variable the service reads, and which of them hold secrets.

Generated from ``somamemory.settings.Settings`` by ``python -m somamemory_operator.crd
--write``: do not edit. The operator image does not carry the service's dependencies, so
the names travel as data; a test regenerates this file and fails when it differs.
"""

# variable -> the settings field it sets
SERVICE_ENV: dict[str, str] = {
    "POSTGRES_URL": "postgres_url",
    "REDIS_HOST": "redis_host",
    "REDIS_PORT": "redis_port",
    "SOMA_ALLOW_UNAUTHENTICATED": "allow_unauthenticated",
    "SOMA_API_TOKEN": "api_token",
    "SOMA_BACKEND_CHECK_SECONDS": "backend_check_seconds",
    "SOMA_BATCH_FLUSH_MS": "batch_flush_ms",
    "SOMA_BATCH_SIZE": "batch_size",
    "SOMA_CACHE_MAX_BYTES": "cache_max_bytes",
    "SOMA_CACHE_TTL_SECONDS": "cache_ttl_seconds",
    "SOMA_CONNECT_TIMEOUT_SECONDS": "connect_timeout_seconds",
    "SOMA_DATA_DIR": "data_dir",
    "SOMA_EMBEDDINGS_API_KEY": "embeddings_api_key",
    "SOMA_EMBEDDINGS_BATCH_SIZE": "embeddings_batch_size",
    "SOMA_EMBEDDINGS_MAX_RETRIES": "embeddings_max_retries",
    "SOMA_EMBEDDINGS_MODEL": "embeddings_model",
    "SOMA_EMBEDDINGS_TIMEOUT_SECONDS": "embeddings_timeout_seconds",
    "SOMA_EMBEDDINGS_URL": "embeddings_url",
    "SOMA_EMBEDDING_DIM": "embedding_dim",
    "SOMA_ENABLE_BATCH_UPSERT": "enable_batch_upsert",
    "SOMA_FORCE_HASH_EMBEDDINGS": "force_hash_embeddings",
    "SOMA_HOST": "host",
    "SOMA_HTTP_BODY_TIMEOUT_SECONDS": "http_body_timeout_seconds",
    "SOMA_HTTP_HEAD_TIMEOUT_SECONDS": "http_head_timeout_seconds",
    "SOMA_HTTP_KEEPALIVE_SECONDS": "http_keepalive_seconds",
    "SOMA_HTTP_MAX_CONCURRENCY": "http_max_concurrency",
    "SOMA_HTTP_MAX_HEAD_BYTES": "http_max_head_bytes",
    "SOMA_LOCAL_EMBEDDING_MODEL": "local_embedding_model",
    "SOMA_LOCK_TIMEOUT_SECONDS": "lock_timeout_seconds",
    "SOMA_LOG_JSON": "log_json",
    "SOMA_LOG_LEVEL": "log_level",
    "SOMA_MAX_BATCH_ITEMS": "max_batch_items",
    "SOMA_MAX_PAYLOAD_BYTES": "max_payload_bytes",
    "SOMA_MAX_REQUEST_BYTES": "max_request_bytes",
    "SOMA_MAX_TOP_K": "max_top_k",
    "SOMA_METRICS_REQUIRE_AUTH": "metrics_require_auth",
    "SOMA_MILVUS_COLLECTION": "milvus_collection",
    "SOMA_MILVUS_CONSISTENCY": "milvus_consistency",
    "SOMA_MILVUS_FLUSH_INTERVAL_SECONDS": "milvus_flush_interval_seconds",
    "SOMA_MILVUS_HOST": "milvus_host",
    "SOMA_MILVUS_INDEX": "milvus_index",
    "SOMA_MILVUS_LITE_FAST_SEARCH": "milvus_lite_fast_search",
    "SOMA_MILVUS_PORT": "milvus_port",
    "SOMA_MILVUS_SEARCH_EF": "milvus_search_ef",
    "SOMA_MILVUS_TOKEN": "milvus_token",
    "SOMA_MILVUS_URI": "milvus_uri",
    "SOMA_NAMESPACE": "namespace",
    "SOMA_PORT": "port",
    "SOMA_POSTGRES_POOL_MAX": "postgres_pool_max",
    "SOMA_POSTGRES_POOL_MIN": "postgres_pool_min",
    "SOMA_POSTGRES_TIMEOUT_SECONDS": "postgres_timeout_seconds",
    "SOMA_POSTGRES_URL": "postgres_url",
    "SOMA_RATE_LIMIT_MAX": "rate_limit_max",
    "SOMA_RATE_LIMIT_WINDOW": "rate_limit_window",
    "SOMA_RECONCILE_INTERVAL_SECONDS": "reconcile_interval_seconds",
    "SOMA_REDIS_DB": "redis_db",
    "SOMA_REDIS_HOST": "redis_host",
    "SOMA_REDIS_KEY_PREFIX": "redis_key_prefix",
    "SOMA_REDIS_PASSWORD": "redis_password",
    "SOMA_REDIS_PORT": "redis_port",
    "SOMA_TERMINATION_LOG": "termination_log",
    "SOMA_TOKEN_CACHE_SECONDS": "token_cache_seconds",
}

# secret variables: spec.env passes them with valueFrom.secretKeyRef only
SECRET_ENV: frozenset[str] = frozenset(
    {
        "SOMA_API_TOKEN",
        "SOMA_EMBEDDINGS_API_KEY",
        "SOMA_MILVUS_TOKEN",
        "SOMA_REDIS_PASSWORD",
    }
)
