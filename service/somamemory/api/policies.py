"""``/admin/namespaces/{namespace}/policy``: a namespace's own default TTLs and memory cap
(README, "Expiry and decay"). An admin token of that namespace only."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from ..policies import EffectivePolicy
from .deps import Authorized, Caller, Service, authorize, requested_namespace
from .errors import responses
from .json_body import FastJsonRoute
from .policy_schemas import PolicyCleared, PolicyRequest, PolicyResponse

router = APIRouter(
    route_class=FastJsonRoute,
    prefix="/admin/namespaces/{namespace}/policy",
    tags=["admin"],
    dependencies=[Authorized],
)


def _admin_of(request: Request, caller: Caller, namespace: str) -> str:
    """The path's namespace (400 if malformed) if the caller is an admin of it (403 if not)."""
    checked = requested_namespace(namespace, request.app.state.settings.namespace)
    return authorize(caller, checked, "admin")


def _answer(policy: EffectivePolicy) -> PolicyResponse:
    return PolicyResponse.model_validate(asdict(policy))


@router.get("", response_model=PolicyResponse, responses=responses(400, 401, 403, 503))
async def get_policy(
    namespace: str, request: Request, caller: Caller, service: Service
) -> PolicyResponse:
    """The namespace's effective policy: each value with its source (its own, or the
    settings')."""
    return _answer(await service.policy(_admin_of(request, caller, namespace)))


@router.put("", response_model=PolicyResponse, responses=responses(400, 401, 403, 503))
async def put_policy(
    namespace: str, body: PolicyRequest, request: Request, caller: Caller, service: Service
) -> PolicyResponse:
    """Set the fields given (null clears one); the effective policy after. In effect on this
    replica at once, on the others within SOMA_POLICY_CACHE_SECONDS."""
    ttls = body.default_ttl_seconds
    policy = await service.set_policy(
        _admin_of(request, caller, namespace),
        default_ttl_seconds=None if ttls is None else ttls.model_dump(exclude_unset=True),
        max_memories=body.max_memories,
        given=set(body.model_fields_set),
    )
    return _answer(policy)


@router.delete("", response_model=PolicyCleared, responses=responses(400, 401, 403, 503))
async def delete_policy(
    namespace: str, request: Request, caller: Caller, service: Service
) -> PolicyCleared:
    """Clear the namespace's policy: the settings apply again."""
    checked = _admin_of(request, caller, namespace)
    return PolicyCleared(namespace=checked, cleared=await service.clear_policy(checked))
