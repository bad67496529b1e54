"""The bundled all-MiniLM-L6-v2 on onnxruntime: the default embedder, no torch needed.

Load: the safetensors weights become an ONNX graph in memory (``bert_graph``), run by an
onnxruntime CPU session with every graph optimisation on; ``tokenizer.json`` drives the Rust
``tokenizers`` library. Encode: texts are tokenised once (truncated at the model's
``max_seq_length``), sorted by length and grouped into batches that pad little, run, and put
back in input order. Vectors match sentence-transformers' to a cosine of 0.999 or better.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from ..errors import EmbeddingUnavailable
from .base import EmbedderInfo
from .bert_graph import ATTENTION_MASK, INPUT_IDS, OUTPUT, build_sentence_encoder
from .bundled import BUNDLED_MODEL

BATCH_SIZE = 32
PADDING_SLACK = 1.5  # a batch's padded size over its real tokens, at most
# One intra-op thread: on a 2-core machine with other work on it, a second one gave anything from
# half the speed to 1.7 times it (bench/embeddings.py measures both), and it takes the core that
# serves requests.
DEFAULT_THREADS = 1


class OnnxEmbedder:
    """A BERT sentence-transformers model directory (mean pooling) encoded with onnxruntime.

    Construction reads and converts the weights and blocks (about a second for MiniLM):
    from async code, build it with ``asyncio.to_thread``. ``embed`` encodes in a worker thread,
    one call at a time per embedder (the session's threads are already all it should use).
    """

    def __init__(
        self, model_dir: Path, *, model: str = BUNDLED_MODEL, threads: int = DEFAULT_THREADS
    ) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        _require_mean_pooling(model_dir)
        # weights may be stored at half precision (the bundled ones are): compute in float32
        weights = {
            name: array.astype(np.float32, copy=False)
            for name, array in load_file(model_dir / "model.safetensors").items()
        }
        graph = build_sentence_encoder(config, weights)
        self._session = onnxruntime.InferenceSession(
            graph.SerializeToString(), _session_options(threads), providers=["CPUExecutionProvider"]
        )
        self._tokenizer = _tokenizer(model_dir, _max_seq_length(model_dir, config))
        self.dim = int(config["hidden_size"])
        self.model = model
        self.name = f"onnx:{model}"
        self._lock = threading.Lock()

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo(kind="onnx", model=self.model, dim=self.dim)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_sync, list(texts))

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Encode in the calling thread (``embed`` runs this in a worker thread)."""
        try:
            with self._lock:
                matrix = self.encode(texts)
        except Exception as exc:
            raise EmbeddingUnavailable(f"the local model failed to encode: {exc}") from exc
        vectors: list[list[float]] = matrix.tolist()
        return vectors

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """A float32 ``[len(texts), dim]`` matrix of unit rows (not locked: see ``embed_sync``)."""
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.empty((len(encodings), self.dim), dtype=np.float32)
        for rows in batches([len(encoding.ids) for encoding in encodings]):
            ids, mask = _padded([encodings[i].ids for i in rows])
            [vectors] = self._session.run([OUTPUT], {INPUT_IDS: ids, ATTENTION_MASK: mask})
            out[rows] = vectors
        return out


def batches(lengths: Sequence[int], size: int = BATCH_SIZE) -> list[list[int]]:
    """Indices grouped shortest first into batches of at most ``size`` whose padding stays under
    ``PADDING_SLACK`` times their real tokens: one long text must not pad 31 short ones to 256
    tokens (that made a mixed call of 32 texts ten times slower than sorted, bounded batches)."""
    grouped: list[list[int]] = []
    batch: list[int] = []
    tokens = 0
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        length = lengths[index]  # the longest so far: the batch pads to it
        if batch and (
            len(batch) == size or (len(batch) + 1) * length > PADDING_SLACK * (tokens + length)
        ):
            grouped.append(batch)
            batch, tokens = [], 0
        batch.append(index)
        tokens += length
    if batch:
        grouped.append(batch)
    return grouped


def _padded(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int32 ids (pad id 0) and their attention mask."""
    width = max(len(ids) for ids in sequences)
    ids = np.zeros((len(sequences), width), dtype=np.int32)
    mask = np.zeros((len(sequences), width), dtype=np.int32)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return ids, mask


def _session_options(threads: int) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # idle worker threads sleep instead of spinning on a core the event loop needs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no shape-merging chatter on stderr
    return options


def _tokenizer(model_dir: Path, max_length: int) -> Tokenizer:
    """The model's fast tokenizer, truncating at ``max_length`` and never padding."""
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()  # padding happens per batch, after sorting by length
    return tokenizer


def _max_seq_length(model_dir: Path, config: dict[str, Any]) -> int:
    """sentence-transformers' ``max_seq_length`` (256 for MiniLM), else the position limit."""
    limit = int(config["max_position_embeddings"])
    settings = model_dir / "sentence_bert_config.json"
    if settings.is_file():
        return min(limit, int(json.loads(settings.read_text()).get("max_seq_length", limit)))
    return limit


def _require_mean_pooling(model_dir: Path) -> None:
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens"):
        raise ValueError(f"{model_dir} pools otherwise than by mean; only mean pooling is built")
