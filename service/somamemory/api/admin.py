"""``/admin/tokens``: mint, list and revoke API tokens scoped to namespaces and a role."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..principals import TokenRecord
from .deps import Authorized, Caller, Service
from .errors import problem_response, responses
from .json_body import FastJsonRoute
from .schemas import MintedToken, RevokedToken, TokenInfo, TokenList, TokenRequest

router = APIRouter(
    route_class=FastJsonRoute, prefix="/admin/tokens", tags=["admin"], dependencies=[Authorized]
)

_NO_AUTH = (
    "this service runs without authentication (SOMA_ALLOW_UNAUTHENTICATED); set SOMA_API_TOKEN "
    "to use scoped tokens"
)


def _info(record: TokenRecord) -> TokenInfo:
    return TokenInfo(
        id=record.id,
        role=record.role,
        namespaces=list(record.namespaces),
        created_at=record.created_at,
        expires_at=record.expires_at,
        description=record.description,
    )


def _without_auth(request: Request) -> Response | None:
    if request.app.state.api_token is None:
        return problem_response(409, _NO_AUTH, code="authentication_off")
    return None


@router.post(
    "",
    status_code=201,
    response_model=MintedToken,
    responses=responses(400, 401, 409, 503),
)
async def create_token(
    body: TokenRequest, request: Request, caller: Caller, service: Service
) -> MintedToken | Response:
    """Mint a token; its secret is in this answer only. An admin token scoped to some
    namespaces mints tokens for those only."""
    if (refused := _without_auth(request)) is not None:
        return refused
    record, token = await service.access.mint(
        caller,
        namespaces=tuple(body.namespaces),
        role=body.role,
        expires_at=body.expires_at,
        description=body.description,
    )
    return MintedToken(**_info(record).model_dump(), token=token)


@router.get("", response_model=TokenList, responses=responses(401, 409, 503))
async def list_tokens(request: Request, caller: Caller, service: Service) -> TokenList | Response:
    """The tokens not revoked whose namespaces the caller holds (never their secrets)."""
    if (refused := _without_auth(request)) is not None:
        return refused
    records = await service.access.tokens(caller)
    return TokenList(tokens=[_info(record) for record in records])


@router.delete("/{token_id}", response_model=RevokedToken, responses=responses(401, 404, 409, 503))
async def revoke_token(
    token_id: str, request: Request, caller: Caller, service: Service
) -> RevokedToken | Response:
    """Revoke a token: refused at once on this replica, within SOMA_TOKEN_CACHE_SECONDS on
    the others."""
    if (refused := _without_auth(request)) is not None:
        return refused
    record = await service.access.revoke(caller, token_id)
    assert record.revoked_at is not None
    return RevokedToken(id=record.id, revoked_at=record.revoked_at)
