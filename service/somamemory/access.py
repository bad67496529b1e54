"""Minted API tokens: authenticate them (with a short cache), mint, list and revoke them.

A token is looked up by the digest of its secret in the token store (PostgreSQL, or this process
in the in-process mode) and the answer is kept for ``cache_seconds``, so a busy client costs one
lookup per interval, and a revocation reaches every replica within it (this replica at once).
While the token store is away, a token seen before keeps the rights last read for it; an unknown
one gets 503, never a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import BackendUnavailable, InvalidInput, NotPermitted, TokenNotFound
from .live import LiveStores
from .principals import (
    Principal,
    Role,
    TokenRecord,
    looks_minted,
    new_token,
    new_token_id,
    token_digest,
)
from .recent import RecentAnswers
from .stores import TokenStore


class Access:
    """Authentication of minted tokens and their administration."""

    def __init__(self, live: LiveStores, *, cache_seconds: float, max_cached: int = 10_000):
        self._live = live
        self._seen: RecentAnswers[bytes, TokenRecord | None] = RecentAnswers(
            cache_seconds, max_kept=max_cached
        )

    async def authenticate(self, token: bytes) -> Principal | None:
        """The principal of a minted token, or None if it is unknown, expired or revoked.

        ``BackendUnavailable`` when the token store does not answer and the token was never seen.
        """
        if not looks_minted(token):
            return None
        digest = token_digest(token)
        record = await self._record(digest)
        if record is None or not record.live_at(datetime.now(UTC)):
            return None
        return Principal.of(record)

    async def _record(self, digest: bytes) -> TokenRecord | None:
        """Kept for ``cache_seconds``; while the store is away, the last rights read for it."""

        async def find() -> TokenRecord | None:
            store = self._live.tokens
            if store is None:
                raise BackendUnavailable("postgres", "minted tokens are kept in PostgreSQL")
            return await store.find(digest)

        return await self._seen.get(digest, find)

    async def mint(
        self,
        by: Principal,
        *,
        namespaces: tuple[str, ...],
        role: Role,
        expires_at: datetime | None = None,
        description: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """A new token and its secret (shown once; only its digest is kept)."""
        self._require_admin(by)
        if not by.covers_all(namespaces):
            raise NotPermitted("an admin token may mint tokens only for namespaces it holds itself")
        now = datetime.now(UTC)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidInput("expires_at needs a time zone, e.g. 2027-01-01T00:00:00Z")
            if expires_at <= now:
                raise InvalidInput("expires_at is in the past")
        record = TokenRecord(
            id=new_token_id(),
            role=role,
            namespaces=tuple(sorted(set(namespaces))),
            created_at=now,
            expires_at=expires_at,
            description=description,
        )
        token = new_token()
        await self._store().create(record, token_digest(token.encode()))
        return record, token

    async def tokens(self, by: Principal) -> list[TokenRecord]:
        """The tokens not revoked whose namespaces ``by`` holds (expired ones included)."""
        self._require_admin(by)
        return [record for record in await self._store().list() if by.covers_all(record.namespaces)]

    async def revoke(self, by: Principal, token_id: str) -> TokenRecord:
        """Revoke a token of the caller's namespaces: refused at once here, within the cache
        interval on other replicas."""
        self._require_admin(by)
        store = self._store()
        owned = {record.id: record for record in await self.tokens(by)}
        if token_id not in owned:
            raise TokenNotFound(f"no live token {token_id!r} among this admin's namespaces")
        revoked = await store.revoke(token_id)
        if revoked is None:
            raise TokenNotFound(f"no live token {token_id!r} among this admin's namespaces")
        self._seen.forget(lambda record: record is not None and record.id == token_id)
        return revoked

    @staticmethod
    def _require_admin(by: Principal) -> None:
        if not by.may("admin"):
            raise NotPermitted(f"this token's role is {by.role!r}; managing tokens needs 'admin'")

    def _store(self) -> TokenStore:
        store = self._live.tokens
        if store is None:
            raise BackendUnavailable(
                "postgres", "minted tokens are kept in PostgreSQL, which is down"
            )
        return store
