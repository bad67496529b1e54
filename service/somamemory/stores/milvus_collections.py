"""The Milvus collections of one deployment: found, described, opened, recorded and dropped.

One client serves every collection a process opens; the catalogue owns and closes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from pymilvus.exceptions import MilvusException

from ..models import Consistency, EmbedderInfo
from .collection_identity import (
    IDENTITY_PROPERTY,
    CollectionFacts,
    identity_text,
    in_family,
    parse_identity,
)
from .milvus import (
    MilvusVectorStore,
    _make_private,
    _translated,
    open_client,
)
from .milvus_tuning import DEFAULT_SEARCH_EF

log = logging.getLogger(__name__)
RECORD_ATTEMPTS = 4


class MilvusCatalogue:
    """The collections behind one Milvus URI (milvus-lite path or server)."""

    def __init__(
        self,
        uri: str,
        *,
        token: str | None,
        timeout: float,
        fast_lite_search: bool = True,
        lite_process: bool = False,
        index_type: str = "HNSW",
        search_ef: int = DEFAULT_SEARCH_EF,
        consistency: Consistency = "session",
    ) -> None:
        """Open the client (blocks: call in a worker thread from async code)."""
        self._uri = uri
        self._opened = open_client(
            uri,
            token=token,
            timeout=timeout,
            fast_lite_search=fast_lite_search,
            lite_process=lite_process,
        )
        self._client = self._opened.client
        self._store_options: dict[str, Any] = {
            "index_type": index_type,
            "search_ef": search_ef,
            "consistency": consistency,
        }

    def open(
        self, name: str, *, dim: int, identity: EmbedderInfo | None = None
    ) -> MilvusVectorStore:
        """The collection ``name`` as a vector store, created (recording ``identity``) when
        missing; a ``StartupError`` when it holds vectors of another dimension. Blocks."""
        store = MilvusVectorStore(
            self._client,
            collection=name,
            dim=dim,
            is_lite=self._opened.is_lite,
            identity=identity,
            owns_client=False,
            **self._store_options,
        )
        store._split_upserts = self._opened.split_upserts
        store._ensure_collection()
        if store.is_lite:
            _make_private(Path(self._uri))
        return store

    @_translated
    async def family(self, base: str) -> list[CollectionFacts]:
        return await asyncio.to_thread(self._family, base)

    def _family(self, base: str) -> list[CollectionFacts]:
        found: list[CollectionFacts] = []
        for name in sorted(self._client.list_collections()):
            if not in_family(base, name):
                continue
            description = self._client.describe_collection(name)
            properties = description.get("properties") or {}
            identity = parse_identity(properties.get(IDENTITY_PROPERTY)) or parse_identity(
                description.get("description")
            )
            dim = next(
                (
                    int(field["params"]["dim"])
                    for field in description["fields"]
                    if field["name"] == "vector"
                ),
                0,
            )
            self._client.load_collection(name)
            rows = self._client.query(name, filter="", output_fields=["count(*)"])
            found.append(CollectionFacts(name, identity, dim, int(rows[0]["count(*)"])))
        return found

    @_translated
    async def exists(self, name: str) -> bool:
        return bool(await asyncio.to_thread(self._client.has_collection, name))

    @_translated
    async def record(self, name: str, info: EmbedderInfo) -> None:
        await asyncio.to_thread(self._record, name, identity_text(info))

    def _record(self, name: str, text: str) -> None:
        """Record ``text`` as ``name``'s identity. Every worker of a deployment may record the
        same one at startup: the milvus-lite server writes a collection's properties through one
        temporary file, so records at the same moment fail all but one. A failed record that
        finds ``text`` recorded is done; otherwise it is tried again, a few times."""
        for attempt in range(RECORD_ATTEMPTS):
            try:
                self._client.alter_collection_properties(name, properties={IDENTITY_PROPERTY: text})
                return
            except MilvusException:
                properties = self._client.describe_collection(name).get("properties") or {}
                if properties.get(IDENTITY_PROPERTY) == text:
                    return
                if attempt == RECORD_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @_translated
    async def drop(self, name: str) -> None:
        await asyncio.to_thread(self._client.drop_collection, name)

    async def close(self) -> None:
        await asyncio.to_thread(self._opened.close)
