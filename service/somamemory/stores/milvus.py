"""Milvus through pymilvus' ``MilvusClient``: milvus-lite (a path) and a server (``http://``) alike.

pymilvus is synchronous, so every call runs in a worker thread to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import (
    DataNotMatchException,
    DataTypeNotMatchException,
    MilvusException,
    ParamError,
    PrimaryKeyException,
)

from ..errors import BackendRefused, BackendUnavailable, SomaError, StartupError
from ..filters import SearchFilter
from ..models import Consistency, EmbedderInfo, Memory
from .answering import observed
from .collection_identity import IDENTITY_PROPERTY, identity_text
from .driver_errors import translated
from .milvus_filter import milvus_fields, milvus_filter, milvus_string
from .milvus_lite_builds import install_single_thread_builds, install_small_segments_unindexed
from .milvus_lite_files import install_plain_vector_pages
from .milvus_lite_flush import install_flush_visibility
from .milvus_lite_half import install_half_precision_graphs
from .milvus_lite_memory import install_returning_pool
from .milvus_lite_memtable import install_columnar_flush
from .milvus_lite_pings import install_welcome_pings
from .milvus_lite_process import release_own_process, serve_from_child, serve_from_thread
from .milvus_lite_search import install_fast_search
from .milvus_lite_tombstones import install_tombstone_gc
from .milvus_sessions import NamespaceSessions, last_write_timestamp
from .milvus_tuning import DEFAULT_SEARCH_EF

log = logging.getLogger(__name__)
_CONSISTENCY: dict[Consistency, str] = {
    "strong": "Strong",
    "session": "Session",
    "bounded": "Bounded",
    "eventually": "Eventually",
}
_COLLECTION_NOT_LOADED = 101

# Refusals of the input: pymilvus' own checks of rows and parameters, and server answers marked
# as input errors, or with an illegal-argument status: legacy codes 5, 7 and 11 (6 in milvus-lite),
# "parameter invalid" (1100) in the codes of Milvus 2.4+.
_CLIENT_REFUSALS = (
    ParamError,
    DataTypeNotMatchException,
    DataNotMatchException,
    PrimaryKeyException,
)
_ILLEGAL_ARGUMENT_LEGACY = frozenset({5, 6, 7, 11})
_PARAMETER_INVALID = 1100


def _failure(exc: BaseException) -> SomaError:
    """A refused input (BackendRefused), else Milvus is away or failing (BackendUnavailable)."""
    if isinstance(exc, MilvusException) and (
        exc.is_input_error
        or isinstance(exc, _CLIENT_REFUSALS)
        or exc.code == _PARAMETER_INVALID
        or exc.compatible_code in _ILLEGAL_ARGUMENT_LEGACY
    ):
        return BackendRefused("milvus", f"{type(exc).__name__}: {exc}")
    return BackendUnavailable("milvus", type(exc).__name__)


_translated = translated((MilvusException, OSError, TimeoutError), _failure)


def vector_id(namespace: str, coord: str) -> str:
    """The primary key of a memory's vector: stable, short, unique per namespace and coord."""
    return hashlib.sha256(f"{namespace}\x00{coord}".encode()).hexdigest()[:40]


# efConstruction 64 (not 200): milvus-lite rebuilds whole segments after every merge, and 64 built
# them at a third of the CPU for 0.6 points of recall@10 at 50k, which search ef makes up.
_INDEX_PARAMS: dict[str, dict[str, int]] = {
    "HNSW": {"M": 16, "efConstruction": 64},
    "HNSW_SQ": {"M": 16, "efConstruction": 64},
    "IVF_FLAT": {"nlist": 1024},
    "IVF_SQ8": {"nlist": 1024},
}


def _make_private(path: Path) -> None:
    """milvus-lite's files hold every tenant's vectors and filterable fields: owner only."""
    if path.exists():
        path.chmod(0o700 if path.is_dir() else 0o600)
        for child in path.rglob("*"):
            child.chmod(0o700 if child.is_dir() else 0o600)


def _upsert_misroutes(server_version: str) -> bool:
    """Milvus before 2.4 routed upserts by the wrong field when the collection has a partition
    key (milvus-io/milvus#30607): the rows became invisible to namespace-filtered reads."""
    if server_version.startswith("milvus_lite"):
        return False  # the milvus-lite server routes upserts right
    numbers = [int(part) for part in re.findall(r"\d+", server_version)[:2]]
    if len(numbers) < 2:
        return True  # unknown: take the path that is right everywhere
    return (numbers[0], numbers[1]) < (2, 4)


@dataclass(frozen=True, slots=True)
class OpenedClient:
    client: MilvusClient
    is_lite: bool
    split_upserts: bool  # see _upsert_misroutes
    lite_child_of: str | None = None  # the data directory whose lite process it uses

    def close(self) -> None:
        """Close the client; the last client of a lite process stops it."""
        try:
            self.client.close()
        finally:
            if self.lite_child_of is not None:
                release_own_process(self.lite_child_of)


def install_lite_mends(*, fast_search: bool) -> None:
    """Mend milvus-lite in this process as the store needs it (where lite's server runs)."""
    if fast_search:
        install_fast_search()
        install_small_segments_unindexed()  # their exact search is the fast executor's
    install_single_thread_builds()
    install_half_precision_graphs()
    install_tombstone_gc()  # before: the segments published after a refresh are its result
    install_flush_visibility()
    install_returning_pool()
    install_columnar_flush()
    install_plain_vector_pages()
    install_welcome_pings()


def open_client(
    uri: str,
    *,
    token: str | None,
    timeout: float,
    fast_lite_search: bool = True,
    lite_process: bool = False,
) -> OpenedClient:
    """A client of milvus-lite (a path) or of a server (``http://``). milvus-lite runs in a
    child process when ``lite_process`` (``milvus_lite_process``), else in a thread of this one;
    either way it is mended as this module needs it."""
    kwargs: dict[str, Any] = {"uri": uri, "timeout": timeout}
    if token:
        kwargs["token"] = token
    is_lite = "://" not in uri
    child = is_lite and lite_process and serve_from_child(uri, fast_search=fast_lite_search)
    if is_lite and not child:
        serve_from_thread(uri)
        install_lite_mends(fast_search=fast_lite_search)
    client = MilvusClient(**kwargs)
    split = False
    if not is_lite:
        try:
            version = str(client.get_server_version())
        except MilvusException:
            version = "unknown"
        split = _upsert_misroutes(version)
        log.info("Milvus server %s (split upserts: %s)", version, split)
    return OpenedClient(client, is_lite, split, uri if child else None)


class MilvusVectorStore:
    """One collection; the namespace is its partition key; COSINE similarity.

    milvus-lite scans rows it has not flushed yet in Python, slowly, and only a flush makes them
    durable: the write path flushes every ``SOMA_MILVUS_FLUSH_INTERVAL_SECONDS`` while writes go
    on and clears outbox entries only after that. Searches read at ``consistency`` (per store,
    or per request): ``session`` sees every write this process made in the searched namespace,
    waiting on a Milvus server only for those (``milvus_sessions``), not for its next time tick
    as ``strong`` does.
    """

    name = "milvus"

    def __init__(
        self,
        client: MilvusClient,
        *,
        collection: str,
        dim: int,
        index_type: str = "HNSW",
        search_ef: int = DEFAULT_SEARCH_EF,
        is_lite: bool = False,
        consistency: Consistency = "session",
        identity: EmbedderInfo | None = None,
        owns_client: bool = True,
    ) -> None:
        self._client = client
        self._collection = collection
        self.identity = identity  # recorded on the collection when this store creates it
        self._owns_client = owns_client  # False: the catalogue's client, closed by it
        self._close_client: Callable[[], None] = client.close
        self.dim = dim
        self.index_type = index_type
        self.search_ef = search_ef
        self.is_lite = is_lite
        self.consistency = consistency
        self._dirty = False
        self._split_upserts = False  # see _upsert_misroutes
        self._sessions = NamespaceSessions()  # a server's session level, per namespace
        self.answered_at = 0.0  # when a call last got its answer (time.monotonic())

    @classmethod
    def connect(
        cls,
        uri: str,
        *,
        collection: str,
        dim: int,
        token: str | None,
        timeout: float,
        index_type: str = "HNSW",
        search_ef: int = DEFAULT_SEARCH_EF,
        fast_lite_search: bool = True,
        lite_process: bool = False,
        consistency: Consistency = "session",
        identity: EmbedderInfo | None = None,
    ) -> MilvusVectorStore:
        """Open the client and make sure the collection exists with the expected dimension."""
        opened = open_client(
            uri,
            token=token,
            timeout=timeout,
            fast_lite_search=fast_lite_search,
            lite_process=lite_process,
        )
        store = cls(
            opened.client,
            collection=collection,
            dim=dim,
            index_type=index_type,
            search_ef=search_ef,
            is_lite=opened.is_lite,
            consistency=consistency,
            identity=identity,
        )
        store._split_upserts = opened.split_upserts
        store._close_client = opened.close
        try:
            store._ensure_collection()
        except BaseException:
            opened.close()  # and its lite process, if it was the last client
            raise
        if store.is_lite:
            _make_private(Path(uri))
        return store

    def _ensure_collection(self) -> None:
        if self._client.has_collection(self._collection):
            existing = self._existing_dim()
            if existing != self.dim:
                raise StartupError(
                    f"Milvus collection {self._collection!r} holds {existing}-dim vectors but the "
                    f"embedder makes {self.dim}-dim ones: set SOMA_EMBEDDING_DIM={existing}, or "
                    "choose another SOMA_MILVUS_COLLECTION"
                )
            self._client.load_collection(self._collection)
            return
        recorded = identity_text(self.identity) if self.identity is not None else ""
        # a server keeps the description too; milvus-lite keeps only the property
        schema = MilvusClient.create_schema(
            auto_id=False, enable_dynamic_field=False, description=recorded
        )
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("namespace", DataType.VARCHAR, max_length=128, is_partition_key=True)
        schema.add_field("coord", DataType.VARCHAR, max_length=8192)
        schema.add_field("memory_type", DataType.VARCHAR, max_length=16)
        schema.add_field("version", DataType.INT64)
        schema.add_field("importance", DataType.DOUBLE)
        schema.add_field("fields", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params: dict[str, Any] = _INDEX_PARAMS.get(self.index_type, {})
        if self.is_lite and params:
            # milvus-lite 3.2 reads build parameters only from a JSON "params" entry: given flat
            # (as a server takes them) it drops them and builds with faiss's defaults
            params = {"params": params}
        index = self._client.prepare_index_params()
        index.add_index(
            field_name="vector", index_type=self.index_type, metric_type="COSINE", params=params
        )
        self._client.create_collection(
            self._collection,
            schema=schema,
            index_params=index,
            consistency_level=_CONSISTENCY[self.consistency],
            **({"properties": {IDENTITY_PROPERTY: recorded}} if recorded else {}),
        )

    def _existing_dim(self) -> int:
        description = self._client.describe_collection(self._collection)
        for field in description["fields"]:
            if field["name"] == "vector":
                return int(field["params"]["dim"])
        raise StartupError(f"Milvus collection {self._collection!r} has no 'vector' field")

    @observed
    @_translated
    async def upsert(self, items: Sequence[tuple[Memory, Sequence[float]]]) -> None:
        rows = [
            {
                "id": vector_id(memory.namespace, memory.coord),
                "namespace": memory.namespace,
                "coord": memory.coord,
                "memory_type": memory.memory_type,
                "version": memory.version,
                "importance": float(memory.importance),
                "fields": milvus_fields(memory),
                "vector": vector if isinstance(vector, list) else list(vector),
            }
            for memory, vector in items
        ]
        if not rows:
            return
        if self._split_upserts:
            # delete + insert: safe with the outbox (a crash in between leaves the entry owed)
            unique = list({row["id"]: row for row in rows}.values())
            ids = [row["id"] for row in unique]
            await asyncio.to_thread(self._client.delete, self._collection, ids=ids)
            await asyncio.to_thread(self._client.insert, self._collection, unique)
        else:
            await asyncio.to_thread(self._client.upsert, self._collection, rows)
        self._dirty = True
        self._written({memory.namespace for memory, _ in items})

    @observed
    @_translated
    async def delete(self, namespace: str, coords: Sequence[str]) -> None:
        ids = [vector_id(namespace, coord) for coord in coords]
        if ids:
            await asyncio.to_thread(self._client.delete, self._collection, ids=ids)
            self._dirty = True
            self._written([namespace])

    def _written(self, namespaces: Iterable[str]) -> None:
        """Note the writes just acknowledged in ``namespaces`` for session-level searches."""
        if not self.is_lite:
            self._sessions.record(namespaces, last_write_timestamp(self._client, self._collection))

    @observed
    @_translated
    async def search(
        self,
        vector: Sequence[float],
        *,
        top_k: int,
        where: SearchFilter,
        consistency: Consistency | None = None,
    ) -> list[tuple[str, float]]:
        """The ``top_k`` nearest vectors matching ``where``: (coord, cosine), best first."""
        level = consistency or self.consistency
        if level == "session" and not self.is_lite:
            read_at = self._sessions.search_arguments(where.namespace)
        else:
            read_at = {"consistency_level": _CONSISTENCY[level]}
        params: dict[str, Any] = {"metric_type": "COSINE"}
        if self.index_type.startswith("HNSW"):
            params["params"] = {"ef": max(self.search_ef, top_k)}
        elif self.index_type.startswith("IVF"):
            params["params"] = {"nprobe": 32}
        results = await self._loaded(
            self._client.search,
            self._collection,
            data=[[float(x) for x in vector]],
            limit=top_k,
            filter=milvus_filter(where),
            output_fields=["coord"],
            search_params=params,
            **read_at,
        )
        return [(hit["entity"]["coord"], float(hit["distance"])) for hit in results[0]]

    async def _loaded(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a read; if the server came back with the collection released, load it, retry."""
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except MilvusException as exc:
            if exc.code != _COLLECTION_NOT_LOADED:
                raise
            log.warning("milvus collection %s was released; loading it", self._collection)
            await asyncio.to_thread(self._client.load_collection, self._collection)
            return await asyncio.to_thread(call, *args, **kwargs)

    @property
    def durable_writes(self) -> bool:
        """A Milvus server logs a write before answering; milvus-lite only on flush."""
        return not self.is_lite

    @property
    def dirty(self) -> bool:
        """Writes since the last flush (which milvus-lite would scan slowly in search)."""
        return self._dirty and self.is_lite

    @observed
    @_translated
    async def flush(self) -> None:
        """Persist what was written (milvus-lite); a no-op for a server, which persists itself."""
        if not self.is_lite:
            return
        self._dirty = False
        await asyncio.to_thread(self._client.flush, self._collection)

    @observed
    @_translated
    async def get_vector(self, namespace: str, coord: str) -> list[float] | None:
        rows = await self._loaded(
            self._client.get,
            self._collection,
            ids=[vector_id(namespace, coord)],
            output_fields=["vector"],
        )
        return [float(x) for x in rows[0]["vector"]] if rows else None

    @observed
    @_translated
    async def count(self, namespace: str) -> int:
        rows = await self._loaded(
            self._client.query,
            self._collection,
            filter=f"namespace == {milvus_string(namespace)}",
            output_fields=["count(*)"],
            # counts are rare (stats, the rebuild's completion check) and must see deletes: a
            # Milvus 2.3 server's session level did not show this client's own delete. Not on
            # milvus-lite, which has no timestamp service and answered some strong counts short.
            consistency_level=_CONSISTENCY["session" if self.is_lite else "strong"],
        )
        return int(rows[0]["count(*)"]) if rows else 0

    @observed
    @_translated
    async def ping(self) -> None:
        await asyncio.to_thread(self._client.has_collection, self._collection)

    @property
    def collection(self) -> str:
        return self._collection

    async def close(self) -> None:
        if self._owns_client:
            await asyncio.to_thread(self._close_client)
