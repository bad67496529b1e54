"""Compute the reference vectors of tests/data/embedding_sentences.json with sentence-transformers.

The ONNX embedder's agreement test (tests/embeddings/test_onnx_model.py) compares against these,
so it runs without torch. Run again only when the sentences change:

    pip install torch==2.13.0 'somamemory[embeddings]'
    python3 scripts/make_reference_embeddings.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SENTENCES = DATA / "embedding_sentences.json"
REFERENCE = DATA / "embedding_reference.npy"


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is on disk: never ask the hub
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer

    from somamemory.embeddings.bundled import bundled_model_dir

    sentences = json.loads(SENTENCES.read_text(encoding="utf-8"))
    model = SentenceTransformer(str(bundled_model_dir()), device="cpu", local_files_only=True)
    vectors = model.encode(
        sentences,
        batch_size=32,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype(np.float32)
    np.save(REFERENCE, vectors)
    print(f"{REFERENCE.name}: {vectors.shape[0]} vectors of {vectors.shape[1]} dims")


if __name__ == "__main__":
    main()
