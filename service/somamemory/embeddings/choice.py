"""Which local embedder serves: the bundled model on onnxruntime, another model on torch, or hash.

The choice between these and an OpenAI-compatible endpoint is made in ``backends``; this module
decides only among the local ones, and makes sure a model that cannot load never stops the
service from starting.
"""

from __future__ import annotations

import functools
import logging

from .base import Embedder
from .bundled import BUNDLED_MODEL, bundled_model_dir, is_bundled
from .hashing import HashEmbedder

log = logging.getLogger(__name__)


def load_local_model(model_name: str) -> Embedder:
    """The named local model, loaded once per process (apps built later share it; it is
    thread-safe). The bundled model runs on onnxruntime; any other needs the torch extra.
    Raises whatever stops the model from loading."""
    return _load(BUNDLED_MODEL if is_bundled(model_name) else model_name)


@functools.lru_cache(maxsize=4)
def _load(model_name: str) -> Embedder:
    if model_name == BUNDLED_MODEL:
        from .minilm_onnx import OnnxEmbedder

        return OnnxEmbedder(bundled_model_dir(), model=BUNDLED_MODEL)
    from .local import LocalModelEmbedder

    return LocalModelEmbedder(model_name)


def local_model_or_hash(model_name: str, fallback_dim: int) -> Embedder:
    """The named local model, else (with a warning that says why) the hash embedder."""
    try:
        return load_local_model(model_name)
    except Exception as exc:  # a missing package, a broken wheel, a bad directory: all the same
        log.warning(
            "the embedding model %r cannot load (%s: %s): serving on the hash embedder, which "
            "matches shared words, not meaning; fix SOMA_LOCAL_EMBEDDING_MODEL or set "
            "SOMA_EMBEDDINGS_URL",
            model_name,
            type(exc).__name__,
            exc,
        )
        return HashEmbedder(fallback_dim)
