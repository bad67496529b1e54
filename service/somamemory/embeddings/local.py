"""Another local sentence-transformers model, run with torch (the optional ``embeddings`` extra).

The bundled all-MiniLM-L6-v2 runs without torch (``minilm_onnx``); this path serves a model that
``SOMA_LOCAL_EMBEDDING_MODEL`` names as a directory holding a sentence-transformers model. Nothing
is ever downloaded. torch and sentence-transformers are imported only when such a model is loaded,
so importing ``somamemory`` never imports torch.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import EmbeddingUnavailable, StartupError
from .base import EmbedderInfo
from .bundled import BUNDLED_MODEL, bundled_model_dir, is_bundled

_INSTALL_HINT = "pip install torch==2.13.0 && pip install 'somamemory[embeddings]'"
_ENCODE_BATCH = 32


def model_path(model_name: str) -> Path:
    """The directory to load ``model_name`` from: the bundled model, or an existing local path."""
    if is_bundled(model_name):
        return bundled_model_dir()
    path = Path(model_name).expanduser()
    if path.is_dir():
        return path
    raise StartupError(
        f"SOMA_LOCAL_EMBEDDING_MODEL={model_name!r} is neither the bundled {BUNDLED_MODEL!r} nor a "
        "directory holding a sentence-transformers model (models are never downloaded at run time)"
    )


def _offline_environment() -> None:
    # huggingface_hub reads these once, at import: set them before sentence-transformers loads.
    # setdefault keeps an operator's explicit choice; local_files_only=True holds regardless.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


class LocalModelEmbedder:
    """A sentence-transformers model on torch, encoding on the CPU in a worker thread.

    Vectors are L2-normalised; ``dim`` is the model's.

    Construction loads the model and blocks (seconds, mostly importing torch): from async code,
    build it with ``await asyncio.to_thread(LocalModelEmbedder, name)``. ``threads`` sets torch's
    intra-op threads for the whole process (default: torch's own choice, one per core).
    """

    def __init__(self, model_name: str = BUNDLED_MODEL, *, threads: int | None = None) -> None:
        path = model_path(model_name)
        _offline_environment()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except Exception as exc:
            raise StartupError(
                f"the local embedding model needs torch and sentence-transformers: {_INSTALL_HINT}"
                f" ({type(exc).__name__}: {exc})"
            ) from exc
        if threads is not None:
            # process-wide; 1 thread held up far better than 2 on a busy 2-core machine
            torch.set_num_threads(threads)
        try:
            self._model: Any = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except Exception as exc:
            raise StartupError(f"cannot load the embedding model from {path}: {exc}") from exc
        # sentence-transformers 6 renamed the method (the old name warns); older releases lack it
        model = self._model
        get_dim = getattr(model, "get_embedding_dimension", None)
        get_dim = get_dim or model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise StartupError(f"the embedding model at {path} does not say its dimension")
        self.dim = int(dim)
        self.model_name = model_name
        self.name = f"local:{Path(model_name).name}"
        self._lock = threading.Lock()  # one encode at a time: torch already uses every core

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo(kind="sentence-transformers", model=self.model_name, dim=self.dim)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_sync, list(texts))

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        """Encode in the calling thread (``embed`` runs this in a worker thread)."""
        try:
            with self._lock:
                matrix = self._model.encode(
                    texts,
                    batch_size=_ENCODE_BATCH,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        except Exception as exc:
            raise EmbeddingUnavailable(f"the local model failed to encode: {exc}") from exc
        vectors: list[list[float]] = matrix.tolist()
        return vectors
