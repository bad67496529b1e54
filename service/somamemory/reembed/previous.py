"""The embedder of the previous collection, for query texts while the new one is built.

Where this process can build it: the hash embedder always, the bundled model, another local
model when it loads, an OpenAI-compatible endpoint only when it is the configured one.
Otherwise a vector search answers 503 with the reason (hybrid falls back to keyword alone;
``live.PreviousIndex``).
"""

from __future__ import annotations

import asyncio

from ..embeddings import Embedder, HashEmbedder
from ..embeddings.base import EmbedderInfo
from ..embeddings.choice import load_local_model


async def embedder_for(
    identity: EmbedderInfo | None, configured: Embedder
) -> tuple[Embedder | None, str]:
    """The embedder of ``identity``, or None and why this process cannot build it."""
    if identity is None:
        return None, "no record says which embedder filled it"
    if identity == configured.info:
        return configured, ""
    if identity.kind == "hash":
        return HashEmbedder(identity.dim), ""
    if identity.kind in ("onnx", "sentence-transformers") and identity.model:
        try:
            loaded = await asyncio.to_thread(load_local_model, identity.model)
        except Exception as exc:  # any reason it cannot load is the same here
            return None, f"its model cannot load here ({type(exc).__name__})"
        if loaded.info.dim == identity.dim:
            return loaded, ""
        return None, f"the model {identity.model!r} here makes {loaded.info.dim}-dim vectors"
    return None, "its embedding endpoint is not the configured one"
