"""``POST /memories/batch``: many memories in one request, with a result per item."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from ..errors import InvalidCoordinate, InvalidInput, PayloadTooLarge
from ..models import NewMemory
from .deps import Service, WriteNamespace
from .errors import errors_summary, field_errors, problem_response, responses, status_of
from .json_body import FastJsonRoute
from .schemas import BatchItemResult, BatchRejected, BatchRequest, BatchResponse, StoreRequest

router = APIRouter(route_class=FastJsonRoute, prefix="/memories", tags=["memories"])


def _item_error(exc: ValidationError) -> str:
    return errors_summary(field_errors(exc.errors()), limit=1)


@router.post(
    "/batch",
    response_model=BatchResponse,
    responses={
        **responses(401, 413, 503),
        400: {
            "model": BatchRejected,
            "description": "atomic: some items are invalid; none written",
        },
    },
)
async def store_batch(
    body: BatchRequest, request: Request, namespace: WriteNamespace, service: Service
) -> BatchResponse | Response:
    """Store many memories in one transaction; each item answers for itself."""
    limit: int = request.app.state.settings.max_batch_items
    if len(body.items) > limit:
        raise PayloadTooLarge(
            f"{len(body.items)} items; at most {limit} per batch (SOMA_MAX_BATCH_ITEMS)"
        )
    results: list[BatchItemResult] = []
    valid: list[tuple[int, NewMemory]] = []
    defaults = await service.default_ttls(namespace)  # items without a TTL of their own
    for index, raw in enumerate(body.items):
        try:
            item = StoreRequest.model_validate(raw)
            new = service.prepare(
                namespace,
                item.coord,
                item.payload,
                memory_type=item.memory_type,
                importance=item.importance,
                vector=item.vector,
                ttl_seconds=item.ttl_seconds,
                expires_at=item.expires_at,
                refresh_on_read=item.refresh_on_read,
                default_ttl_seconds=defaults,
            )
        except ValidationError as exc:
            results.append(BatchItemResult(index=index, status=422, detail=_item_error(exc)))
        except (InvalidCoordinate, InvalidInput, PayloadTooLarge) as exc:
            status, _ = status_of(exc)
            results.append(BatchItemResult(index=index, status=status, detail=str(exc)))
        else:
            valid.append((index, new))
    failed = len(results)
    if body.atomic and failed:
        not_written = [
            BatchItemResult(index=i, status=409, coord=new.coord, detail="not written (atomic)")
            for i, new in valid
        ]
        results = sorted(results + not_written, key=lambda r: r.index)
        return problem_response(
            400,
            f"{failed} of {len(body.items)} items are invalid; nothing was written",
            code="invalid_batch",
            results=[result.model_dump() for result in results],
        )
    written = await service.store_many([new for _, new in valid])
    for (index, _), done in zip(valid, written, strict=True):
        results.append(
            BatchItemResult(
                index=index,
                status=200,
                coord=done.memory.coord,
                version=done.memory.version,
                indexed=done.indexed,
            )
        )
    results.sort(key=lambda r: r.index)
    return BatchResponse(written=len(written), failed=failed, results=results)
