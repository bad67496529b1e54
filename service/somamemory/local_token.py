"""The token ``somamemory serve`` keeps in its data directory when ``SOMA_API_TOKEN`` is unset."""

from __future__ import annotations

import secrets
from pathlib import Path

TOKEN_FILE = "api_token"


def existing_local_token(data_dir: Path) -> str | None:
    """The local token, if one was made."""
    path = data_dir / TOKEN_FILE
    return path.read_text().strip() if path.is_file() else None


def local_token(data_dir: Path) -> str:
    """The local token, created on first use (readable by the owner only)."""
    existing = existing_local_token(data_dir)
    if existing is not None:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path = data_dir / TOKEN_FILE
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token
