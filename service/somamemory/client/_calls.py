"""Each route as data: what to send, and how to read the answer (no I/O here).

The sync and the async client both turn a route into a :class:`Call`, send it with their own
httpx client and retry loop, and hand the answer to :func:`finish`. So each route is written
once, and the two clients differ only in how they wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NotRequired, Required, TypedDict, TypeVar
from urllib.parse import quote

from ._errors import APIError, BadRequest, BatchRejected, UnexpectedResponse, error_for
from ._models import (
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
    Neighbors,
    SearchHit,
    Stats,
    StoreResult,
    TokenInfo,
    UnlinkResult,
    VersionsPage,
    search_hits,
    token_list,
)
from ._retry import Attempts, parse_retry_after

T = TypeVar("T")
Params = dict[str, str | int | float]


class MemoryItem(TypedDict, total=False):
    """One memory of a batch, as for :meth:`SomaClient.store`."""

    coord: Required[Coord]
    payload: Required[dict[str, Any]]
    memory_type: NotRequired[MemoryType]
    importance: NotRequired[float]
    vector: NotRequired[Sequence[float]]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer.

    ``answers`` are non-2xx statuses that are answers rather than errors (``/readyz``'s 503);
    ``refine`` may turn the generic error of a status into a route's own.
    """

    method: str
    path: str
    decode: Callable[[Any], T]
    params: Params | None = None
    body: Any = None
    answers: frozenset[int] = frozenset()
    refine: Callable[[APIError], APIError] | None = None

    def is_answer(self, status: int) -> bool:
        return 200 <= status < 300 or status in self.answers


def coord_text(coord: Coord) -> str:
    """``"1,2,3"`` as given, or numbers joined the way the server reads them."""
    if isinstance(coord, str):
        return coord
    return ",".join(repr(float(part)) for part in coord)


def _coord_path(coord: Coord) -> str:
    return quote(coord_text(coord), safe=",")


def _params(**values: str | int | float | None) -> Params:
    return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Expiry:
    """When a stored memory expires: after ``ttl_seconds`` or at ``expires_at`` (not both)."""

    ttl_seconds: int | None = None
    expires_at: datetime | str | None = None
    refresh_on_read: bool = False

    def body(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.ttl_seconds is not None:
            fields["ttl_seconds"] = self.ttl_seconds
        if self.expires_at is not None:
            at = self.expires_at
            fields["expires_at"] = at.isoformat() if isinstance(at, datetime) else at
        if self.refresh_on_read:
            fields["refresh_on_read"] = True
        return fields


def _memory_body(
    coord: Coord,
    payload: Mapping[str, Any],
    memory_type: MemoryType | None,
    importance: float | None,
    vector: Sequence[float] | None,
    expiry: Expiry | None = None,
) -> dict[str, Any]:
    """Only what the caller gave: the server's defaults apply to the rest."""
    body: dict[str, Any] = {"coord": coord_text(coord), "payload": dict(payload)}
    if expiry is not None:
        body.update(expiry.body())
    if memory_type is not None:
        body["memory_type"] = memory_type
    if importance is not None:
        body["importance"] = importance
    if vector is not None:
        body["vector"] = [float(x) for x in vector]
    return body


def store(
    coord: Coord,
    payload: Mapping[str, Any],
    memory_type: MemoryType | None = None,
    importance: float | None = None,
    vector: Sequence[float] | None = None,
    expiry: Expiry | None = None,
) -> Call[StoreResult]:
    body = _memory_body(coord, payload, memory_type, importance, vector, expiry)
    return Call("POST", "/memories", StoreResult.from_json, body=body)


def _batch_rejected(error: APIError) -> APIError:
    """An atomic batch's 400 lists every item's fate: keep them, typed."""
    if isinstance(error, BadRequest) and isinstance(error.body, dict):
        items = error.body.get("results")
        if isinstance(items, list):
            results = [BatchItemResult.from_json(item) for item in items]
            return BatchRejected(error.status, error.detail, error.body, results)
    return error


def store_batch(items: Iterable[MemoryItem | Mapping[str, Any]], atomic: bool) -> Call[BatchResult]:
    sent = []
    for item in items:
        memory = dict(item)
        if "coord" in memory and not isinstance(memory["coord"], str):
            memory["coord"] = coord_text(memory["coord"])
        if memory.get("vector") is not None:
            memory["vector"] = [float(x) for x in memory["vector"]]
        sent.append(memory)
    body = {"items": sent, "atomic": atomic}
    return Call("POST", "/memories/batch", BatchResult.from_json, body=body, refine=_batch_rejected)


def get(coord: Coord, as_of: datetime | str | None = None) -> Call[Memory]:
    moment = as_of.isoformat() if isinstance(as_of, datetime) else as_of
    return Call(
        "GET",
        f"/memories/{_coord_path(coord)}",
        lambda data: Memory.from_json(data["memory"]),
        params=_params(as_of=moment) or None,
    )


def versions(coord: Coord, after: int, limit: int) -> Call[VersionsPage]:
    path = f"/memories/{_coord_path(coord)}/versions"
    return Call("GET", path, VersionsPage.from_json, params=_params(after=after, limit=limit))


def next_after(after: int, page: VersionsPage) -> int | None:
    """Where the page after ``page`` starts, or None at the end (a server that does not move on
    is an error, not an endless loop)."""
    if page.next_after is None:
        return None
    if page.next_after <= after:
        raise UnexpectedResponse(f"versions page after {after} points back to {page.next_after}")
    return page.next_after


def delete(coord: Coord) -> Call[DeleteResult]:
    return Call("DELETE", f"/memories/{_coord_path(coord)}", DeleteResult.from_json)


def search(
    query: str | None,
    vector: Sequence[float] | None,
    top_k: int,
    filters: Mapping[str, Any] | None,
    memory_type: MemoryType | Sequence[MemoryType] | None,
    consistency: str | None = None,
    expand: Mapping[str, Any] | None = None,
    mode: str | None = None,
    rank: str | None = None,
) -> Call[list[SearchHit]]:
    body: dict[str, Any] = {"top_k": top_k}
    if mode is not None:
        body["mode"] = mode
    if rank is not None:
        body["rank"] = rank
    if expand is not None:
        body["expand"] = dict(expand)
    if consistency is not None:
        body["consistency"] = consistency
    if query is not None:
        body["query"] = query
    if vector is not None:
        body["vector"] = [float(x) for x in vector]
    if filters is not None:
        body["filters"] = dict(filters)
    if memory_type is not None:
        body["memory_type"] = memory_type if isinstance(memory_type, str) else list(memory_type)
    return Call("POST", "/memories/search", search_hits, body=body)


def stats() -> Call[Stats]:
    return Call("GET", "/stats", Stats.from_json)


def health() -> Call[Health]:
    return Call("GET", "/health", Health.from_json)


def create_token(
    namespaces: Sequence[str],
    role: str,
    expires_at: datetime | str | None,
    description: str | None,
) -> Call[MintedToken]:
    body: dict[str, Any] = {"namespaces": list(namespaces), "role": role}
    if expires_at is not None:
        body["expires_at"] = expires_at if isinstance(expires_at, str) else expires_at.isoformat()
    if description is not None:
        body["description"] = description
    return Call("POST", "/admin/tokens", MintedToken.from_json, body=body)


def list_tokens() -> Call[list[TokenInfo]]:
    return Call("GET", "/admin/tokens", token_list)


def revoke_token(token_id: str) -> Call[bool]:
    return Call("DELETE", f"/admin/tokens/{quote(token_id, safe='')}", lambda data: True)


def _policy_path(namespace: str) -> str:
    return f"/admin/namespaces/{quote(namespace, safe='')}/policy"


POLICY_CLEARABLE = ("episodic", "semantic", "max_memories")


def get_policy(namespace: str) -> Call[NamespacePolicy]:
    return Call("GET", _policy_path(namespace), NamespacePolicy.from_json)


def set_policy(
    namespace: str,
    default_ttl_seconds: Mapping[str, int] | None,
    max_memories: int | None,
    clear: Sequence[str],
) -> Call[NamespacePolicy]:
    unknown = sorted(set(clear) - set(POLICY_CLEARABLE))
    if unknown:
        raise ValueError(f"clear names {unknown}; it takes {', '.join(POLICY_CLEARABLE)}")
    ttls: dict[str, int | None] = dict(default_ttl_seconds or {})
    ttls.update({kind: None for kind in clear if kind != "max_memories"})
    body: dict[str, Any] = {}
    if ttls:
        body["default_ttl_seconds"] = ttls
    if max_memories is not None or "max_memories" in clear:
        body["max_memories"] = max_memories
    return Call("PUT", _policy_path(namespace), NamespacePolicy.from_json, body=body)


def clear_policy(namespace: str) -> Call[bool]:
    return Call("DELETE", _policy_path(namespace), lambda data: bool(data["cleared"]))


def _status_ok(data: Any) -> bool:
    return isinstance(data, dict) and data.get("status") == "ok"


def alive() -> Call[bool]:
    return Call("GET", "/healthz", _status_ok)


def ready() -> Call[bool]:
    return Call("GET", "/readyz", _status_ok, answers=frozenset({503}))


def link(
    from_coord: Coord,
    to_coord: Coord,
    link_type: str,
    strength: float | None,
    metadata: Mapping[str, Any] | None,
) -> Call[LinkResult]:
    body: dict[str, Any] = {
        "from_coord": coord_text(from_coord),
        "to_coord": coord_text(to_coord),
        "link_type": link_type,
    }
    if strength is not None:
        body["strength"] = strength
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return Call("POST", "/graph/link", LinkResult.from_json, body=body)


def unlink(from_coord: Coord, to_coord: Coord, link_type: str | None) -> Call[UnlinkResult]:
    params = _params(
        from_coord=coord_text(from_coord), to_coord=coord_text(to_coord), link_type=link_type
    )
    return Call("DELETE", "/graph/link", UnlinkResult.from_json, params=params)


def neighbors(
    coord: Coord,
    k_hop: int | None,
    link_type: str | None,
    limit: int | None,
    direction: str | None = None,
) -> Call[Neighbors]:
    params = _params(
        coord=coord_text(coord),
        k_hop=k_hop,
        link_type=link_type,
        limit=limit,
        direction=direction,
    )
    return Call("GET", "/graph/neighbors", Neighbors.from_json, params=params)


def path(
    from_coord: Coord,
    to_coord: Coord,
    max_length: int | None,
    link_type: str | None,
    direction: str | None = None,
) -> Call[GraphPath]:
    params = _params(
        from_coord=coord_text(from_coord),
        to_coord=coord_text(to_coord),
        max_length=max_length,
        link_type=link_type,
        direction=direction,
    )
    return Call("GET", "/graph/path", GraphPath.from_json, params=params)


def wait_before_retry(
    call: Call[Any], attempts: Attempts, status: int, headers: Mapping[str, str]
) -> float | None:
    """How long to wait before sending ``call`` again after ``status``; None: this is final."""
    if call.is_answer(status):
        return None
    return attempts.after_status(status, parse_retry_after(headers.get("retry-after")))


def finish(call: Call[T], status: int, headers: Mapping[str, str], content: bytes) -> T:
    """The typed result of an answer, or the typed error of an error status."""
    try:
        data = json.loads(content) if content else None
    except ValueError:
        data = None
        if call.is_answer(status):
            raise UnexpectedResponse(
                f"{call.method} {call.path} answered {status} with a body that is not JSON: "
                f"{content[:200]!r}"
            ) from None
    if not call.is_answer(status):
        retry_after = parse_retry_after(headers.get("retry-after"))
        error = error_for(
            status, data, f"HTTP {status} from {call.method} {call.path}", retry_after
        )
        raise call.refine(error) if call.refine else error
    try:
        return call.decode(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedResponse(
            f"{call.method} {call.path} answered {status} without the expected fields "
            f"({type(exc).__name__}: {exc}): {content[:200]!r}"
        ) from exc
