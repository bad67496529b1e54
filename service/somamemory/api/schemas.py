"""Request and response bodies (compatible with SomaFractalMemory's; extra fields are ours)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ..links import Expansion
from ..models import Consistency, Memory, MemoryType
from ..principals import Role
from ..search_fusion import SearchMode, SearchResult


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: e.g. ['body', 'vector', 3].")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error answer has this shape (RFC 9457 members, plus a stable ``code``)."""

    status: int = Field(description="The HTTP status, repeated.")
    title: str = Field(description="The status's reason phrase.")
    code: str = Field(description="A stable, machine-readable kind of failure.")
    detail: str = Field(description="What went wrong, and what to do about it.")
    errors: list[FieldError] | None = Field(None, description="422: each field that is wrong.")


class StoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    coord: str = Field(
        description="Comma-separated finite numbers, 1 to 64 of them.", examples=["0.1,0.2,0.3"]
    )
    payload: dict[str, Any] = Field(description="The memory: any JSON object.")
    memory_type: MemoryType = "episodic"
    importance: float = Field(0.0, description="Caller-defined weight; any finite number.")
    vector: list[float] | None = Field(
        None, description="The memory's own embedding; otherwise the service embeds the payload."
    )
    ttl_seconds: int | None = Field(
        None,
        description="Expire this many seconds after the write (1 to SOMA_MAX_TTL_SECONDS). "
        "Neither this nor expires_at: the type's default TTL (SOMA_DEFAULT_TTL_SECONDS), if any.",
    )
    expires_at: str | None = Field(
        None,
        description="Expire at this ISO 8601 time (with a zone), instead of ttl_seconds.",
        examples=["2026-12-31T23:59:59Z"],
    )
    refresh_on_read: bool = Field(
        False, description="Each read moves the expiry to the read's time plus the TTL."
    )


class StoreResponse(BaseModel):
    coord: str
    memory_type: MemoryType
    ok: bool
    namespace: str
    version: int
    indexed: bool = Field(description="Whether the vector reached the vector store already.")


class MemoryOut(BaseModel):
    namespace: str
    coord: str
    memory_type: MemoryType
    payload: dict[str, Any]
    importance: float
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = Field(None, description="When it expires; null: never.")

    @classmethod
    def of(cls, memory: Memory) -> MemoryOut:
        return cls(
            namespace=memory.namespace,
            coord=memory.coord,
            memory_type=memory.memory_type,
            payload=memory.payload,
            importance=memory.importance,
            version=memory.version,
            created_at=memory.created_at,
            updated_at=memory.updated_at,
            expires_at=memory.expires_at,
        )


class MemoryResponse(BaseModel):
    memory: MemoryOut


class VersionOut(MemoryOut):
    deleted_at: datetime | None = Field(
        None,
        description="Set on the last version of an earlier life: the memory was deleted then "
        'and written again later (README, "Time travel").',
    )

    @classmethod
    def of_version(cls, memory: Memory, deleted_at: datetime | None) -> VersionOut:
        return cls(**MemoryOut.of(memory).model_dump(), deleted_at=deleted_at)


class VersionsResponse(BaseModel):
    coord: str
    versions: list[VersionOut] = Field(description="Stored versions, oldest first (one page).")
    next_after: int | None = Field(
        None,
        description="More versions follow: ask again with ?after=<this> (same limit); null at "
        "the end.",
    )


class DeletionReceiptOut(BaseModel):
    canonical: str = Field(description="done, or absent when there was nothing to delete.")
    cache: str = Field(description="done, none (no cache) or unreachable (expires within its TTL).")
    vector: str = Field(description="done, or pending: the reconciler removes it.")


class DeleteResponse(BaseModel):
    coord: str
    deleted: bool
    receipt: DeletionReceiptOut | None = Field(
        None, description="Where the memory was removed from already."
    )


class DeletionStatusResponse(BaseModel):
    coord: str
    clear: bool = Field(description="True once no store holds the memory any more.")
    canonical: bool
    cache: bool
    vector: bool


class StatsResponse(BaseModel):
    namespace: str
    total_memories: int
    episodic: int
    semantic: int
    vector_count: int | None = Field(description="None when the vector store does not answer.")
    namespaces: dict[str, int] = Field(description="Live memories of the caller's namespace.")


class BackendHealth(BaseModel):
    ok: bool
    kind: str
    detail: str | None = None


class EmbedderHealth(BaseModel):
    kind: str = Field(description="onnx, sentence-transformers, openai or hash.")
    model: str | None = Field(description="The model's name (None for the hash embedder).")
    dim: int


class ReembeddingHealth(BaseModel):
    """A change of embedding model under way: the new collection being built from PostgreSQL."""

    model_config = ConfigDict(populate_by_name=True)

    from_: EmbedderHealth | None = Field(
        alias="from",
        description="What filled the collection searches answer from now (None: unknown).",
    )
    to: EmbedderHealth = Field(description="The configured embedder, whose collection is built.")
    state: str = Field(description="waiting (for PostgreSQL), building, or switched.")
    total: int = Field(description="Memories enqueued for the new collection.")
    done: int
    remaining: int = Field(description="Vectors still owed before the switch.")
    parked: int = Field(description="Of them, parked ones: not waited for (see parked_examples).")


class HealthResponse(BaseModel):
    kv_store: bool
    vector_store: bool
    graph_store: bool = Field(description="Whether the memory graph (in PostgreSQL) answers.")
    cache: bool
    mode: str
    degraded: bool
    reconcile_backlog: int | None = Field(
        description="Vectors still to write or remove (None if PostgreSQL does not answer)."
    )
    reconcile_parked: int | None = Field(
        None,
        description="Outbox entries the vector store refused repeatedly; each waits, parked, "
        "until its memory is written again (None if PostgreSQL does not answer).",
    )
    parked_examples: list[dict[str, Any]] = Field(
        default_factory=list, description="A few parked entries with their last error."
    )
    backends: dict[str, BackendHealth]
    embedder: EmbedderHealth = Field(description="The embedder in force for texts.")
    reembedding: ReembeddingHealth | None = Field(
        None, description="Present while the embedding model changes (README)."
    )


class ProbeResponse(BaseModel):
    status: str


FilterValue = str | bool | int | float
# A field's value or list, an operator object, or the list of $and / $or; filters.py checks the
# rest of the language (400 with the path of what is wrong).
FilterClause = FilterValue | list[FilterValue | dict[str, Any]] | dict[str, Any]


class SearchExpand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    link_type: str | None = Field(None, description="Follow only links of this type.")
    depth: int = Field(1, description="Links to follow from each hit: 1.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    query: str | None = Field(None, max_length=8192, description="Text to search by meaning.")
    vector: list[float] | None = Field(None, description="Search by this vector instead.")
    top_k: int = Field(10, ge=1, le=16384, description="How many; at most SOMA_MAX_TOP_K.")
    filters: dict[str, FilterClause] | None = Field(
        None,
        description="Which memories may be answered; every key must hold. A key is a field "
        "(memory_type, importance, version, created_at, updated_at, else a top-level payload "
        "field) or $and / $or (a list of filter objects) or $not (a filter object). A field takes "
        "a value (equality), a list (membership) or an operator object: $eq $ne $gt $gte $lt $lte "
        "(a value), $in $nin (a list), $exists (a boolean), $not (an operator object). Times are "
        "ISO 8601. A missing field satisfies no comparison; $ne, $nin and $not match it. An "
        "unknown operator or a value of the wrong type: 400 naming its path.",
        examples=[
            {"topic": "tea", "memory_type": ["semantic"]},
            {
                "$or": [{"importance": {"$gte": 0.8}}, {"pinned": True}],
                "created_at": {"$gte": "2026-01-01T00:00:00Z"},
                "status": {"$nin": ["done", "dropped"]},
            },
        ],
    )
    memory_type: MemoryType | list[MemoryType] | None = None
    consistency: Consistency | None = Field(
        None,
        description="How fresh the vector index must be: 'strong' (every acknowledged write, "
        "any replica), 'session' (this replica's writes; the default, SOMA_MILVUS_CONSISTENCY), "
        "'bounded' (seconds behind), 'eventually'.",
    )
    mode: str | None = Field(
        None,
        max_length=16,
        description="'hybrid' (the default with a query text): meaning and keywords fused by "
        "reciprocal rank; 'vector': by meaning alone (the default with a vector only); "
        "'keyword': full text over the payload's strings, in PostgreSQL. Anything else: 400.",
        examples=["hybrid"],
    )
    rank: str | None = Field(
        None,
        max_length=16,
        description="'similarity' (the default): the mode's order; 'blended': re-ranked by "
        "w_s * similarity + w_i * effective importance + w_r * recency (README, 'Expiry and "
        "decay'), the score then being that sum.",
        examples=["blended"],
    )
    expand: SearchExpand | None = Field(
        None,
        description="Add the memories one link out of the hits (after them, marked with "
        "'via'; at most as many as the hits; filters do not apply to them).",
    )


class SearchVia(BaseModel):
    coord: str
    link_type: str
    strength: float


class SearchHit(BaseModel):
    coord: str
    payload: dict[str, Any]
    memory_type: MemoryType
    importance: float
    version: int
    score: float = Field(
        description="Higher is better. vector: cosine similarity to the query; keyword: the summed "
        "rarity (BM25 idf) of the query terms the memory holds; hybrid: the reciprocal rank "
        "fusion sum(1 / (60 + rank)) over the lists the memory is in."
    )
    ranks: dict[str, int | None] | None = Field(
        None,
        description="The memory's rank (from 1) in the vector and in the keyword list, null "
        "where it is not in that list; absent on expansions.",
        examples=[{"vector": 3, "keyword": 1}],
    )
    similarity: float | None = Field(
        None,
        description="Cosine similarity to the query where the memory is in the vector list (the "
        "score of vector mode, in every mode), else null.",
    )
    via: SearchVia | None = Field(
        default=None,
        description="Only on expansions: the hit this memory is linked from (its score is "
        "that hit's).",
    )


class SearchResponse(BaseModel):
    memories: list[SearchHit]
    mode: SearchMode | None = Field(
        None,
        description="The mode that answered: as asked, or 'vector' for a hybrid search while "
        "PostgreSQL is not in use (Redis-only and in-process modes), or 'keyword' for one while "
        "the embedding model changes and the previous model cannot embed the query (README).",
    )

    @classmethod
    def of(
        cls,
        hits: list[tuple[Memory, float]],
        expansions: list[tuple[Memory, Expansion, float]] | None = None,
        *,
        ranked: SearchResult | None = None,
    ) -> SearchResponse:
        """The answer to a search: its hits (from ``ranked`` when given, with their ranks)."""
        extra: list[tuple[dict[str, int | None] | None, float | None]] = [(None, None)] * len(hits)
        if ranked is not None:
            extra = [(hit.ranks, hit.similarity) for hit in ranked.hits]
        found = [
            SearchHit(
                coord=memory.coord,
                payload=memory.payload,
                memory_type=memory.memory_type,
                importance=memory.importance,
                version=memory.version,
                score=score,
                ranks=hit_ranks,
                similarity=similarity,
            )
            for (memory, score), (hit_ranks, similarity) in zip(hits, extra, strict=True)
        ]
        for memory, hop, score in expansions or []:
            via = SearchVia(coord=hop.via, link_type=hop.link_type, strength=hop.strength)
            found.append(
                SearchHit(
                    coord=memory.coord,
                    payload=memory.payload,
                    memory_type=memory.memory_type,
                    importance=memory.importance,
                    version=memory.version,
                    score=score,
                    ranks=None,
                    similarity=None,
                    via=via,
                )
            )
        return cls(memories=found, mode=ranked.mode if ranked is not None else None)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(
        description="Memories as for POST /memories; each is validated on its own."
    )
    atomic: bool = Field(False, description="All or nothing: one bad item writes none.")


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="200 written; 4xx this item is invalid; 409 not written.")
    coord: str | None = None
    version: int | None = None
    indexed: bool | None = None
    detail: str | None = None


class BatchResponse(BaseModel):
    written: int
    failed: int
    results: list[BatchItemResult]


class BatchRejected(ErrorResponse):
    """A 400 of the batch route: an atomic batch with invalid items lists every item's result;
    a request-level problem (a bad namespace header) has only the detail."""

    results: list[BatchItemResult] = Field(default_factory=list)


# ── API tokens ──────────────────────────────────────────────────────────────────────────────
NamespaceScope = Annotated[
    str, Field(pattern=r"^(\*|[A-Za-z0-9_.\-]{1,64})$", examples=["team-a", "*"])
]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespaces: list[NamespaceScope] = Field(
        min_length=1, max_length=256, description="The namespaces it may use; '*' for all."
    )
    role: Role = Field(
        description="read: fetch and search; write: also store and delete; "
        "admin: also manage tokens (for its own namespaces)."
    )
    expires_at: AwareDatetime | None = Field(None, description="When it stops working.")
    description: str | None = Field(None, max_length=256, description="A note for its owner.")

    @field_validator("description")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value)):
            raise ValueError("description must be printable text")
        return value


class TokenInfo(BaseModel):
    id: str
    role: Role
    namespaces: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    description: str | None = None


class MintedToken(TokenInfo):
    token: str = Field(description="The secret: shown this once, kept only as a digest.")


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class RevokedToken(BaseModel):
    id: str
    revoked_at: datetime
