"""Which embedder filled a vector collection, and the collection's name for an embedder.

Every collection the service creates records its embedder (kind, model, dimension) as JSON in
a collection property; its name is ``<SOMA_MILVUS_COLLECTION>__<8 hex digits>`` of that
identity. A collection named exactly ``SOMA_MILVUS_COLLECTION`` without a record is a legacy
one, from before identities were recorded: ``reembed.plan`` finds out what filled it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast, get_args

from ..models import EmbedderInfo, EmbedderKind

IDENTITY_PROPERTY = "somamemory.embedder"
_KINDS = frozenset(get_args(EmbedderKind))


def identity_text(info: EmbedderInfo) -> str:
    """The JSON recorded on a collection: ``{"dim", "kind", "model"}``."""
    return json.dumps({"kind": info.kind, "model": info.model, "dim": info.dim}, sort_keys=True)


def parse_identity(text: object) -> EmbedderInfo | None:
    """The identity recorded as ``text``; None when there is none (or it is not one)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind, model, dim = data.get("kind"), data.get("model"), data.get("dim")
    if kind not in _KINDS or not (model is None or isinstance(model, str)):
        return None
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        return None
    return EmbedderInfo(kind=cast(EmbedderKind, kind), model=model, dim=dim)


def physical_name(base: str, info: EmbedderInfo) -> str:
    """The collection of ``info``'s vectors: ``<base>__<8 hex of sha256(kind|model|dim)>``."""
    digest = hashlib.sha256(f"{info.kind}|{info.model or ''}|{info.dim}".encode()).hexdigest()
    return f"{base}__{digest[:8]}"


def in_family(base: str, name: str) -> bool:
    """Whether ``name`` is a collection of ``base``: the legacy one or an identity's."""
    if name == base:
        return True
    suffix = name.removeprefix(f"{base}__")
    return suffix != name and len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix)


def shown(info: EmbedderInfo | None) -> str:
    """An identity in words, for logs and 503 reasons."""
    if info is None:
        return "an unknown embedder"
    model = f" {info.model}" if info.model else ""
    return f"{info.kind}{model} ({info.dim} dims)"


@dataclass(frozen=True, slots=True)
class CollectionFacts:
    """One collection of the family: its name, recorded identity (None: legacy), dimension and
    row count."""

    name: str
    identity: EmbedderInfo | None
    dim: int
    rows: int


class Collections(Protocol):
    """The vector store's collections, as re-embedding sees them."""

    async def family(self, base: str) -> Sequence[CollectionFacts]:
        """Every collection of ``base`` (see :func:`in_family`)."""
        ...

    async def exists(self, name: str) -> bool: ...

    async def record(self, name: str, info: EmbedderInfo) -> None:
        """Record ``info`` as what filled the collection ``name``."""
        ...

    async def drop(self, name: str) -> None: ...
