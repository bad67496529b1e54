"""The one factory that opens every backend and decides the degradation mode.

- PostgreSQL unreachable -> Redis-only mode (memories in Redis), with a warning.
- Redis unreachable (or not configured) -> in-process cache and locks, with a warning.
- Both unreachable -> in-process store: nothing survives a restart, loudly said.
- Milvus unreachable -> the service refuses to start: vectors are required.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import embedded, schema
from .embeddings import Embedder, HashEmbedder
from .embeddings.choice import local_model_or_hash
from .embeddings.openai import OpenAIEmbedder
from .errors import BackendUnavailable, ShutdownIncomplete, StartupError
from .health import Deployment
from .live import LiveStores
from .reembed.plan import CollectionPlan, plan_collections
from .settings import Settings
from .stores import (
    Cache,
    KeyValueStore,
    Locks,
    PolicyStore,
    RateLimiter,
    TokenStore,
    VectorStore,
)
from .stores.cache_repair import RepairingCache
from .stores.collection_identity import CollectionFacts, Collections
from .stores.fallback_locks import FallbackLocks
from .stores.inprocess import (
    InProcessCache,
    InProcessLocks,
    InProcessStore,
    InProcessTokenStore,
)
from .stores.inprocess_policies import InProcessPolicyStore
from .stores.journal import RedisJournal
from .stores.milvus import MilvusVectorStore
from .stores.milvus_collections import MilvusCatalogue
from .stores.outbox import NoOutbox, Outbox, PostgresOutbox
from .stores.postgres import PostgresStore
from .stores.postgres_graph import PostgresGraph
from .stores.postgres_locks import PostgresLocks
from .stores.postgres_policies import PostgresPolicyStore
from .stores.postgres_pool import Pool, connection, create_pool
from .stores.postgres_reembed import PostgresReembed
from .stores.postgres_row_security import require_row_security
from .stores.postgres_tokens import PostgresTokenStore
from .stores.rate_limits import FallbackRateLimiter, InProcessRateLimiter, RedisRateLimiter
from .stores.redis import RedisCache, RedisLocks, RedisStore
from .stores.redis_client import Client, open_client
from .stores.redis_client import ping as ping_redis

log = logging.getLogger(__name__)

MODES = ("normal", "cache-in-process", "redis-only", "in-process")


@dataclass
class Backends:
    """What the service runs on, and how it came to be so."""

    live: LiveStores  # the store, cache and outbox in use, and the mode (failover switches them)
    locks: Locks
    rate_limiter: RateLimiter | None  # None: no limit (SOMA_RATE_LIMIT_MAX=0)
    vectors: VectorStore
    embedder: Embedder
    redis: str  # external | in-process | down
    vectors_kind: str  # of the vector store (Milvus: lite | server)
    schema_revision: str | None
    redis_client: Client | None = None
    postgres_pool: Pool | None = None
    collections: Collections | None = None  # the vector store's collections (reembed/)
    plan: CollectionPlan | None = None  # which collection is whose: see reembed/plan.py
    previous_vectors: VectorStore | None = None  # plan.previous opened: search's until switched
    _closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    def deployment(self) -> Deployment:
        """What ``/health`` reports of these choices beside the live stores."""
        client = self.redis_client
        return Deployment(
            redis=self.redis,
            vectors=self.vectors_kind,
            ping_redis=functools.partial(ping_redis, client) if client is not None else None,
        )

    def on_close(self, closer: Callable[[], Awaitable[Any]]) -> None:
        self._closers.append(closer)

    async def close(self) -> None:
        """Close every backend, last opened first; raise if any failed to close."""
        await close_all(self._closers)


async def close_all(closers: list[Callable[[], Awaitable[Any]]]) -> None:
    """Run every closer in reverse order, even after a failure, then raise if any failed.

    A failure is an error, not a warning: it can leave the embedded PostgreSQL running.
    """
    failures = 0
    for closer in reversed(closers):
        try:
            await closer()
        except Exception:  # closing must go on for the others
            failures += 1
            log.error("closing a backend failed", exc_info=True)
    if failures:
        raise ShutdownIncomplete(f"{failures} backend(s) failed to close; see the log above")


async def store_pool(url: str, settings: Settings) -> Pool:
    """The pool the stores, the outbox and the journal replay share (none of them leaves
    session state on a connection, so a released one is not reset)."""
    return await create_pool(
        url,
        min_size=settings.postgres_pool_min,
        max_size=settings.postgres_pool_max,
        timeout=settings.connect_timeout_seconds,
        resets_sessions=False,
    )


@dataclass(frozen=True)
class PostgresStores:
    """Everything the service keeps in PostgreSQL, on one pool."""

    store: PostgresStore
    outbox: PostgresOutbox
    tokens: PostgresTokenStore
    graph: PostgresGraph
    policies: PostgresPolicyStore


def postgres_stores(pool: Pool, settings: Settings) -> PostgresStores:
    """The stores on ``pool``, each answering within the settings' budget (and confined to
    a namespace per call with ``SOMA_POSTGRES_ROW_SECURITY``)."""
    budget, confined = settings.postgres_timeout_seconds, settings.postgres_row_security
    return PostgresStores(
        store=PostgresStore(pool, timeout=budget, row_security=confined),
        outbox=PostgresOutbox(pool, timeout=budget),
        tokens=PostgresTokenStore(pool, timeout=budget),
        graph=PostgresGraph(pool, timeout=budget, row_security=confined),
        policies=PostgresPolicyStore(pool, timeout=budget),
    )


async def _open_postgres(
    settings: Settings, closers: list[Callable[[], Awaitable[Any]]]
) -> tuple[Pool | None, str, str | None, str]:
    """A pool on a schema at head, its kind, the revision and the URL; ``(None, "down", None,
    url)`` when the server does not answer."""
    if settings.postgres_configured:
        url, kind = settings.postgres_url, "external"
    else:
        server = await asyncio.to_thread(embedded.start_embedded_postgres, settings.data_dir)
        closers.append(
            lambda: asyncio.to_thread(embedded.stop_embedded_postgres, server, settings.data_dir)
        )
        url, kind = await embedded.ensure_database(server.get_uri()), "embedded"
        await asyncio.to_thread(schema.upgrade_to_head, url)
    try:
        pool = await store_pool(url, settings)
    except BackendUnavailable:
        log.warning("PostgreSQL is unreachable: running without it", exc_info=True)
        return None, "down", None, url
    try:
        async with connection(pool) as held:
            revision = await schema.require_head(held)
            if settings.postgres_row_security:
                await require_row_security(held)
    except BaseException:
        await pool.close()
        raise
    return pool, kind, revision, url


async def _open_redis(settings: Settings) -> Client | None:
    if not settings.redis_configured:
        # the embedded default means to run without it; a deployment with its own PostgreSQL
        # most likely meant to have Redis too
        level = logging.WARNING if settings.postgres_configured else logging.INFO
        log.log(level, "Redis is not configured: %s", _without_redis(settings))
        return None
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    try:
        return await open_client(
            settings.redis_host,
            settings.redis_port,
            password=password,
            db=settings.redis_db,
            timeout=settings.connect_timeout_seconds,
        )
    except BackendUnavailable:
        log.warning(
            "Redis at %s:%s is unreachable: %s",
            settings.redis_host,
            settings.redis_port,
            _without_redis(settings),
        )
        return None


@dataclass(frozen=True)
class _Vectors:
    target: MilvusVectorStore  # the configured embedder's collection: every write goes here
    catalogue: MilvusCatalogue
    plan: CollectionPlan
    previous: MilvusVectorStore | None


async def _open_milvus(settings: Settings, embedder: Embedder, pool: Pool | None) -> _Vectors:
    uri = settings.effective_milvus_uri
    if "://" not in uri:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    try:
        catalogue = await asyncio.to_thread(
            MilvusCatalogue,
            uri,
            token=token,
            timeout=settings.connect_timeout_seconds,
            fast_lite_search=settings.milvus_lite_fast_search,
            lite_process=settings.milvus_lite_process,
            index_type=settings.milvus_index,
            search_ef=settings.milvus_search_ef,
            consistency=settings.milvus_consistency,
        )
    except Exception as exc:
        raise StartupError(
            f"Milvus at {uri} is unreachable ({type(exc).__name__}: {exc}); the service needs "
            "its vector store: start Milvus or point SOMA_MILVUS_URI at one"
        ) from exc
    try:
        return await _plan_vectors(settings, catalogue, embedder, pool)
    except BaseException as exc:
        await catalogue.close()
        if isinstance(exc, StartupError) or not isinstance(exc, Exception):
            raise
        raise StartupError(
            f"Milvus at {uri} failed while opening its collections ({type(exc).__name__}: {exc})"
        ) from exc


async def _plan_vectors(
    settings: Settings, catalogue: MilvusCatalogue, embedder: Embedder, pool: Pool | None
) -> _Vectors:
    """Open the configured embedder's collection, and the previous one while it is built."""
    opened: dict[str, MilvusVectorStore] = {}

    async def open_collection(facts: CollectionFacts) -> MilvusVectorStore:
        if facts.name not in opened:
            opened[facts.name] = await asyncio.to_thread(catalogue.open, facts.name, dim=facts.dim)
        return opened[facts.name]

    samples = PostgresReembed(pool, timeout=settings.postgres_timeout_seconds) if pool else None
    plan = await plan_collections(
        catalogue,
        base=settings.milvus_collection,
        embedder=embedder,
        samples=samples,
        open_collection=open_collection,
    )
    target = await asyncio.to_thread(
        catalogue.open, plan.target, dim=embedder.dim, identity=embedder.info
    )
    previous = await open_collection(plan.previous) if plan.previous is not None else None
    if previous is None:
        for name in plan.leftovers:  # empty ones: nothing to search meanwhile
            log.info("dropping empty collection %s of another embedder", name)
            await catalogue.drop(name)
    return _Vectors(target, catalogue, plan, previous)


async def _open_embedder(
    settings: Settings, closers: list[Callable[[], Awaitable[Any]]]
) -> Embedder:
    """Forced hash, else an OpenAI-compatible endpoint, else the local model, else hash (warned)."""
    if settings.force_hash_embeddings:
        return HashEmbedder(settings.embedding_dim)
    if settings.embeddings_url:
        key = settings.embeddings_api_key
        remote = OpenAIEmbedder(
            settings.embeddings_url,
            model=settings.embeddings_model,
            dim=settings.embedding_dim,
            api_key=key.get_secret_value() if key else None,
            timeout=settings.embeddings_timeout_seconds,
            max_retries=settings.embeddings_max_retries,
            batch_size=settings.embeddings_batch_size,
        )
        closers.append(remote.aclose)
        return remote
    return await asyncio.to_thread(
        local_model_or_hash, settings.local_embedding_model, settings.embedding_dim
    )


async def open_backends(settings: Settings) -> Backends:
    """Open every backend, choose the mode, and log each choice once."""
    closers: list[Callable[[], Awaitable[Any]]] = []
    try:
        embedder = await _open_embedder(settings, closers)
        pool, postgres_kind, revision, postgres_url = await _open_postgres(settings, closers)
        if pool is not None:
            closers.append(pool.close)
        client = await _open_redis(settings)
        if client is not None:
            closers.append(client.aclose)
        # the embedded PostgreSQL has one writer of vectors, this process: its locks need not
        # be shared (a `somamemory import` beside it writes PostgreSQL alone)
        shared_locks = pool is not None and postgres_kind == "external"
        locks = await _open_locks(settings, client, postgres_url if shared_locks else None, closers)
        opened = await _open_milvus(settings, embedder, pool)
        closers.append(opened.catalogue.close)
        vectors = opened.target
    except BaseException:
        await close_all(closers)
        raise

    limiter = _rate_limiter(settings, client)
    store: KeyValueStore
    cache: Cache | None
    outbox: Outbox = NoOutbox()
    tokens: TokenStore | None = None
    graph: PostgresGraph | None = None
    policies: PolicyStore | None = None
    if pool is not None:
        stores = postgres_stores(pool, settings)
        store, outbox, tokens = stores.store, stores.outbox, stores.tokens
        graph, policies = stores.graph, stores.policies
        closers.append(stores.store.analyzer.close)  # before the pool's: cancels an ANALYZE
        cache = redis_cache(client, settings) if client is not None else _local_cache(settings)
        mode = "cache-in-process" if settings.redis_configured and client is None else "normal"
    elif client is not None:
        store, cache, mode = redis_only_store(client, settings), None, "redis-only"
        log.warning("Redis-only mode: memories are kept in Redis while PostgreSQL is down")
    elif settings.workers > 1:
        await close_all(closers)
        raise StartupError(
            f"neither PostgreSQL nor Redis answers: each of the {settings.workers} workers would "
            "keep memories of its own; start one of them, or run one worker (SOMA_WORKERS=1)"
        )
    else:
        store, cache, mode, tokens = InProcessStore(), None, "in-process", InProcessTokenStore()
        policies = InProcessPolicyStore()
        log.warning("in-process mode: no PostgreSQL, no Redis; memories die with this process")

    if client is not None:
        redis_kind = "external"
    else:
        redis_kind = "down" if settings.redis_configured else "in-process"
    uri = settings.effective_milvus_uri
    return Backends(
        live=LiveStores(store, cache, outbox, mode, postgres_kind, tokens, graph, policies),
        locks=locks,
        rate_limiter=limiter,
        vectors=vectors,
        embedder=embedder,
        redis=redis_kind,
        vectors_kind="server" if "://" in uri else "lite",
        schema_revision=revision,
        redis_client=client,
        postgres_pool=pool,
        collections=opened.catalogue,
        plan=opened.plan,
        previous_vectors=opened.previous,
        _closers=closers,
    )


def _without_redis(settings: Settings) -> str:
    if settings.workers > 1:
        return "no cache (one per worker process would serve stale reads)"
    return "using the in-process cache"


def _local_cache(settings: Settings) -> Cache | None:
    """The cache without Redis: in-process, or none when another worker could change a memory
    this process has cached (reads then go to PostgreSQL)."""
    if settings.workers > 1:
        return None
    return InProcessCache(settings.cache_ttl_seconds, max_bytes=settings.cache_max_bytes)


async def _open_locks(
    settings: Settings,
    client: Client | None,
    postgres_url: str | None,
    closers: list[Callable[[], Awaitable[Any]]],
) -> Locks:
    """Redis locks, falling back to ``postgres_url``'s advisory locks while Redis does not
    answer; without Redis, PostgreSQL's. In-process locks without ``postgres_url``: PostgreSQL
    away at startup, or the embedded default, where this process is the only one that writes
    vectors (several workers are refused there).

    PostgreSQL's exclude across worker processes, replicas and ``somamemory import``; they cost
    a round trip to take and one to release (see the README for the figures).
    """
    shared: Locks | None = None
    if postgres_url is not None:
        postgres = await PostgresLocks.open(
            postgres_url,
            max_holders=settings.postgres_pool_max,
            timeout=settings.lock_timeout_seconds,
            budget=settings.postgres_timeout_seconds,
            connect_timeout=settings.connect_timeout_seconds,
        )
        closers.append(postgres.close)
        shared = postgres
    fallback = shared if shared is not None else InProcessLocks()
    if client is None:
        if shared is None and settings.postgres_configured:
            log.warning("in-process locks: writes exclude each other within this process only")
        return fallback
    redis = RedisLocks(
        client, prefix=settings.redis_key_prefix, timeout=settings.lock_timeout_seconds
    )
    return FallbackLocks(redis, fallback)


def redis_only_store(client: Client, settings: Settings) -> RedisStore:
    """The store of Redis-only mode, journaling every write for replay into PostgreSQL."""
    prefix = settings.redis_key_prefix
    locks = RedisLocks(client, prefix=prefix, timeout=settings.lock_timeout_seconds)
    journal = redis_journal(client, settings) if settings.postgres_configured else None
    # the cache knows the versions PostgreSQL held: Redis-only versions continue from them
    cache = RedisCache(client, prefix=prefix, ttl_seconds=settings.cache_ttl_seconds)
    return RedisStore(client, prefix=prefix, locks=locks, journal=journal, cache=cache)


def redis_journal(client: Client, settings: Settings) -> RedisJournal:
    """The journal of Redis-only mode's writes, replayed into PostgreSQL when it is back."""
    return RedisJournal(client, prefix=settings.redis_key_prefix)


def redis_cache(client: Client, settings: Settings) -> Cache:
    """The cache of normal mode when Redis is there; updates that fail while Redis is away
    are owed and paid before it is read again."""
    ttl = settings.cache_ttl_seconds
    return RepairingCache(
        RedisCache(client, prefix=settings.redis_key_prefix, ttl_seconds=ttl), ttl_seconds=ttl
    )


def _rate_limiter(settings: Settings, client: Client | None) -> RateLimiter | None:
    """Per-token limits: in Redis when it answers (shared by replicas), else in-process."""
    if settings.rate_limit_max == 0:
        return None
    limit, window = settings.rate_limit_max, settings.rate_limit_window
    local = InProcessRateLimiter(limit, window)
    if client is None:
        return local
    shared = RedisRateLimiter(
        client, prefix=settings.redis_key_prefix, limit=limit, window_seconds=window
    )
    return FallbackRateLimiter(shared, local)
