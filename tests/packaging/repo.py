"""Where the repository's packaging files live."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
