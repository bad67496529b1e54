"""A Python client for SomaMemory, blocking and asyncio, on httpx alone.

    from somamemory.client import SomaClient

    with SomaClient() as soma:  # SOMA_URL, SOMA_API_TOKEN, SOMA_NAMESPACE
        soma.store("1,2,3", {"text": "the user prefers tea"}, memory_type="semantic")
        print(soma.search("what does the user drink?", top_k=3)[0].payload)

Results are typed dataclasses; failures are typed exceptions carrying the server's ``detail``
and status; 503, 429 and connection failures are retried with backoff (see :class:`RetryPolicy`).
"""

from ._async import AsyncSomaClient
from ._calls import MemoryItem
from ._config import DEFAULT_URL
from ._errors import (
    APIError,
    BadRequest,
    BatchRejected,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    SomaClientError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from ._models import (
    BackendHealth,
    BatchItemResult,
    BatchResult,
    Coord,
    DeleteResult,
    GraphPath,
    Health,
    LinkResult,
    Memory,
    MemoryType,
    MintedToken,
    NamespacePolicy,
    Neighbor,
    Neighbors,
    PolicyValue,
    SearchHit,
    Stats,
    StoreResult,
    TokenInfo,
    UnlinkResult,
    VersionsPage,
    Via,
)
from ._retry import NO_RETRY, RetryPolicy, parse_retry_after
from ._sync import SomaClient

__all__ = [
    "DEFAULT_URL",
    "NO_RETRY",
    "APIError",
    "AsyncSomaClient",
    "BackendHealth",
    "BadRequest",
    "BatchItemResult",
    "BatchRejected",
    "BatchResult",
    "ConnectionFailed",
    "Coord",
    "DeleteResult",
    "Forbidden",
    "GraphPath",
    "Health",
    "LinkResult",
    "Memory",
    "MemoryItem",
    "MemoryType",
    "MintedToken",
    "NamespacePolicy",
    "Neighbor",
    "Neighbors",
    "NotFound",
    "PayloadTooLarge",
    "PolicyValue",
    "RateLimited",
    "RetryPolicy",
    "SearchHit",
    "ServerError",
    "SomaClient",
    "SomaClientError",
    "Stats",
    "StoreResult",
    "TokenInfo",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "UnlinkResult",
    "VersionsPage",
    "Via",
    "parse_retry_after",
]
