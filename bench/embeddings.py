"""Embedding throughput: the default ONNX path against sentence-transformers on torch.

Both encode the same all-MiniLM-L6-v2 weights, on the CPU, in this one process: sentences/s when
the texts come in calls of 32 and one text per call. The texts are the 227 sentences of
tests/data/embedding_sentences.json, from one word to past the 256-token truncation: "short"
(the 219 under 60 words), "grouped" (all, in the file's order: texts of a kind together, the long
ones in one or two calls) and "mixed" (all, shuffled with seed 0: a long text in most calls).
Rounds alternate between the paths so that other load on the machine hits both alike; the best
round of each counts.

    python bench/embeddings.py [--threads 1 2] [--rounds 2] [--no-torch]

torch comes from the ``embeddings`` extra (``pip install torch==2.13.0 'somamemory[embeddings]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from somamemory.embeddings.bundled import bundled_model_dir
from somamemory.embeddings.minilm_onnx import OnnxEmbedder

SENTENCES = Path(__file__).resolve().parents[1] / "tests" / "data" / "embedding_sentences.json"
BATCH = 32
Encode = Callable[[Sequence[str]], Any]


def rate(encode: Encode, texts: list[str], batch: int) -> float:
    """Sentences per second, encoding ``texts`` in calls of ``batch``."""
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        encode(texts[start : start + batch])
    return len(texts) / (time.perf_counter() - started)


def torch_path(threads: int) -> Encode:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_dir()), device="cpu", local_files_only=True)

    def encode(texts: Sequence[str]) -> Any:
        torch.set_num_threads(threads)  # process-wide: set again before each call
        return model.encode(
            list(texts), batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        )

    return encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true", help="measure the ONNX path only")
    args = parser.parse_args()
    grouped: list[str] = json.loads(SENTENCES.read_text(encoding="utf-8"))
    mixed = random.Random(0).sample(grouped, len(grouped))
    short = [text for text in grouped if len(text.split()) < 60]  # all but the long ones
    runs = {
        "batch 32 short": (short, BATCH),
        "batch 32 grouped": (grouped, BATCH),
        "batch 32 mixed": (mixed, BATCH),
        "batch 1": (grouped, 1),
    }

    paths: dict[tuple[str, int], Encode] = {}
    for threads in args.threads:
        started = time.perf_counter()
        onnx = OnnxEmbedder(bundled_model_dir(), threads=threads)
        print(f"onnx load ({threads} thread(s)): {time.perf_counter() - started:.2f} s")
        paths["onnx", threads] = onnx.encode
        if not args.no_torch:
            paths["torch", threads] = torch_path(threads)
    for encode in paths.values():  # warm-up: first calls allocate
        rate(encode, grouped[:BATCH], BATCH)

    best: dict[tuple[str, int, str], float] = {}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for (name, threads), encode in paths.items():
            for run, (texts, batch) in runs.items():
                key = (name, threads, run)
                best[key] = max(best.get(key, 0.0), rate(encode, texts, batch))
    load_after = os.getloadavg()[0]

    print(
        f"\nsentences/s, best of {args.rounds} rounds, load average "
        f"{load_before:.2f} -> {load_after:.2f} ({os.cpu_count()} cores)\n"
    )
    print("| path | threads | " + " | ".join(runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    for name, threads in paths:
        cells = " | ".join(f"{best[name, threads, run]:.0f}" for run in runs)
        print(f"| {name} | {threads} | {cells} |")
    if not args.no_torch:
        print()
        for threads in args.threads:
            ratios = ", ".join(
                f"{run} x{best['onnx', threads, run] / best['torch', threads, run]:.2f}"
                for run in runs
            )
            print(f"onnx / torch at {threads} thread(s): {ratios}")


if __name__ == "__main__":
    main()
