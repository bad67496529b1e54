"""The default embedder: the bundled all-MiniLM-L6-v2 on onnxruntime, with no torch anywhere.

Its vectors are checked against sentence-transformers' own (computed once with torch by
scripts/make_reference_embeddings.py and kept in tests/data/), so this file needs no torch.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import somamemory
from somamemory.embeddings import Embedder, HashEmbedder
from somamemory.embeddings.base import EmbedderInfo
from somamemory.embeddings.choice import load_local_model
from somamemory.embeddings.minilm_onnx import PADDING_SLACK, OnnxEmbedder, batches

DATA = Path(__file__).parents[1] / "data"
SENTENCES: list[str] = json.loads((DATA / "embedding_sentences.json").read_text(encoding="utf-8"))
REFERENCE = np.load(DATA / "embedding_reference.npy")
AGREEMENT = 0.999


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    model = load_local_model("all-MiniLM-L6-v2")
    assert isinstance(model, OnnxEmbedder)
    return model


def test_the_reference_set_is_varied_enough_to_mean_something() -> None:
    assert len(SENTENCES) >= 200 and REFERENCE.shape == (len(SENTENCES), 384)
    assert "" in SENTENCES and any(not s.isascii() for s in SENTENCES)
    assert sum(len(s.split()) > 256 for s in SENTENCES) >= 5  # past the 256-token truncation


async def test_every_vector_agrees_with_sentence_transformers(embedder: OnnxEmbedder) -> None:
    vectors = np.asarray(await embedder.embed(SENTENCES), dtype=np.float64)
    cosines = np.einsum("ij,ij->i", vectors, REFERENCE) / np.linalg.norm(REFERENCE, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= AGREEMENT, f"cosine {cosines[worst]:.6f} for {SENTENCES[worst]!r}"


def test_a_text_alone_gets_the_vector_it_gets_in_a_padded_batch(embedder: OnnxEmbedder) -> None:
    short = "a memory worth keeping"
    [alone] = embedder.embed_sync([short])
    in_batch = embedder.embed_sync([max(SENTENCES, key=len), short, "x"])[1]
    assert np.dot(alone, in_batch) > 0.99999  # padding and batch-mates do not leak in


def test_it_makes_384_dim_unit_vectors_and_says_what_it_is(embedder: OnnxEmbedder) -> None:
    assert embedder.info == EmbedderInfo(kind="onnx", model="all-MiniLM-L6-v2", dim=384)
    [vector] = embedder.embed_sync(["a memory worth keeping"])
    assert len(vector) == 384
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_text_past_256_tokens_is_truncated_not_refused(embedder: OnnxEmbedder) -> None:
    long = " ".join(f"word{i}" for i in range(400))  # well over 256 tokens
    first, longer = embedder.embed_sync([long, long + " and then a very different ending"])
    assert np.dot(first, longer) == pytest.approx(1.0, abs=1e-5)


def test_batches_keep_one_long_text_from_padding_the_short_ones() -> None:
    lengths = [12, 256, 9, 14, 10, 11, 250, 13] * 10
    grouped = batches(lengths, size=32)
    assert sorted(i for batch in grouped for i in batch) == list(range(len(lengths)))
    for batch in grouped:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert len(batch) <= 32 and padded <= PADDING_SLACK * sum(lengths[i] for i in batch)
    assert batches([], size=32) == []


async def test_no_texts_give_no_vectors(embedder: OnnxEmbedder) -> None:
    assert await embedder.embed([]) == []


def test_the_model_is_loaded_once_per_process(embedder: OnnxEmbedder) -> None:
    assert load_local_model("all-MiniLM-L6-v2") is embedder
    assert load_local_model("sentence-transformers/all-MiniLM-L6-v2") is embedder


STORED = [
    "The physician prescribed antibiotics for an infection.",
    "She gave her brother a fight over the medicine cabinet keys.",
    "The doctor of philosophy defended her thesis on medieval poetry.",
    "Bacteria in yogurt give it a sour taste.",
    "Our automobile would not start this morning because its battery was flat.",
    "The car park was full, so we walked from the station this morning.",
    "My phone's charge lasted all day, so the car trip was easy.",
    "Quarterly tax returns are due at the end of April.",
]
PARAPHRASES = {
    "a doctor gave her medicine to fight bacteria": STORED[0],
    "the car wouldn't turn over today since the cells were dead": STORED[4],
}


async def _best_match(model: Embedder, query: str) -> str:
    stored, [asked] = await model.embed(STORED), await model.embed([query])
    return STORED[int(np.argmax(np.asarray(stored) @ np.asarray(asked)))]


@pytest.mark.parametrize(("query", "meant"), PARAPHRASES.items())
async def test_a_paraphrase_with_no_word_in_common_ranks_first(
    embedder: OnnxEmbedder, query: str, meant: str
) -> None:
    words = re.compile(r"\w+")
    assert not set(words.findall(query.lower())) & set(words.findall(meant.lower()))
    assert await _best_match(embedder, query) == meant
    # the distractors share the query's words: matching words alone picks one of them
    assert await _best_match(HashEmbedder(384), query) != meant


_EMBED_IN_A_FRESH_PROCESS = """
import json, sys
from somamemory.embeddings.choice import load_local_model
model = load_local_model("all-MiniLM-L6-v2")
[vector] = model.embed_sync(["the cat sat on the mat"])
loaded = sorted(m for m in ("torch", "sentence_transformers") if sys.modules.get(m))
print(json.dumps({"kind": model.info.kind, "vector": vector, "loaded": loaded}))
"""
_NO_TORCH = """
import sys
for name in ("torch", "sentence_transformers", "transformers"):
    sys.modules[name] = None  # importing it raises ImportError, as where it is not installed
"""


@pytest.mark.parametrize("torch_importable", [True, False], ids=["torch-installed", "no-torch"])
def test_the_default_model_runs_without_torch(
    embedder: OnnxEmbedder, tmp_path: Path, torch_importable: bool
) -> None:
    here = str(Path(somamemory.__file__).parents[1])  # the same copy of the package as this test
    path = [here, os.environ.get("PYTHONPATH", "")]
    if not torch_importable:
        (tmp_path / "sitecustomize.py").write_text(_NO_TORCH)
        path.insert(0, str(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run(
        [sys.executable, "-c", _EMBED_IN_A_FRESH_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["kind"] == "onnx" and answer["loaded"] == []
    [here_vector] = embedder.embed_sync(["the cat sat on the mat"])
    assert np.dot(answer["vector"], here_vector) == pytest.approx(1.0, abs=1e-5)
