"""The embedder protocol and what text of a memory gets embedded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..models import EmbedderInfo, EmbedderKind, canonical_json

TEXT_FIELDS = ("text", "content", "memory")
__all__ = ["TEXT_FIELDS", "Embedder", "EmbedderInfo", "EmbedderKind", "text_of"]


class Embedder(Protocol):
    """Texts in, one vector of ``dim`` floats per text out."""

    name: str
    dim: int

    @property
    def info(self) -> EmbedderInfo: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def text_of(payload: dict[str, Any]) -> str:
    """The payload's ``text``/``content``/``memory`` field if it is a string, else its JSON."""
    for field in TEXT_FIELDS:
        value = payload.get(field)
        if isinstance(value, str) and value.strip():
            return value
    return canonical_json(payload)
