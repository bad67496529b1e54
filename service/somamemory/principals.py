"""Who is calling, and what they may do: roles, namespace scopes, minted API tokens.

A token is ``smt_`` and 43 URL-safe characters (256 random bits). The service keeps only its
SHA-256 digest: a random secret that long needs no slow hash, and a digest cannot be used as a
token. The bootstrap token (``SOMA_API_TOKEN``) is an admin on every namespace.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("read", "write", "admin")  # each may do what the ones before it may
ALL_NAMESPACES = "*"
MINTED_PREFIX = "smt_"
_MINTED = re.compile(rb"^smt_[A-Za-z0-9_\-]{43}$")


def new_token() -> str:
    """A fresh secret token, shown to its owner once."""
    return MINTED_PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    """A token's public name, for listing and revoking it."""
    return "tok_" + secrets.token_hex(8)


def looks_minted(candidate: bytes) -> bool:
    """Whether ``candidate`` has a minted token's shape (checked before any lookup)."""
    return _MINTED.fullmatch(candidate) is not None


def token_digest(token: bytes) -> bytes:
    """What the token store keeps of a token."""
    return hashlib.sha256(token).digest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A minted token as stored (never its secret)."""

    id: str
    role: Role
    namespaces: tuple[str, ...]  # ("*",) for every namespace
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    description: str | None = None

    def live_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: a role over a set of namespaces (None: all of them)."""

    role: Role
    namespaces: frozenset[str] | None
    token_id: str | None = None  # None: the bootstrap token, or no authentication at all

    @classmethod
    def of(cls, record: TokenRecord) -> Principal:
        scope = None if ALL_NAMESPACES in record.namespaces else frozenset(record.namespaces)
        return cls(role=record.role, namespaces=scope, token_id=record.id)

    def may(self, role: Role) -> bool:
        """Whether this caller's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def covers(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def covers_all(self, namespaces: tuple[str, ...]) -> bool:
        """Whether every one of ``namespaces`` (``*`` meaning all) is within this caller's."""
        if self.namespaces is None:
            return True
        return ALL_NAMESPACES not in namespaces and set(namespaces) <= self.namespaces


ADMIN_EVERYWHERE = Principal(role="admin", namespaces=None)
