"""Failures arrive as typed exceptions carrying the server's status and ``detail``."""

from __future__ import annotations

import pytest

from somamemory.client import (
    NO_RETRY,
    APIError,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)

from ..serve import Serve
from .adapters import Client
from .conftest import MAX_PAYLOAD_BYTES, TOKEN, MakeClient
from .scripted_server import Reply, ScriptedServer


async def test_a_missing_memory_is_not_found(soma: Client, namespace: str) -> None:
    with pytest.raises(NotFound) as error:
        await soma.get("404,404")
    assert error.value.status == 404
    assert error.value.detail == f"no memory at coordinate 404.0,404.0 in namespace {namespace!r}"


async def test_a_wrong_token_is_unauthorized_and_probes_need_none(
    live: Serve, make_client: MakeClient
) -> None:
    wrong = make_client(live.url, token="not-the-token")
    with pytest.raises(Unauthorized) as error:
        await wrong.stats()
    assert error.value.status == 401
    assert error.value.detail == "invalid, expired or revoked bearer token"
    anonymous = make_client(live.url, token="")  # an empty token sends no header at all
    with pytest.raises(Unauthorized, match="missing bearer token"):
        await anonymous.store("1", {"k": 1})
    assert await anonymous.alive() and await anonymous.ready()


async def test_a_bad_coordinate_is_a_bad_request_saying_why(soma: Client) -> None:
    with pytest.raises(BadRequest) as error:
        await soma.store("1,inf", {"k": 1})
    assert error.value.status == 400
    assert error.value.detail == "coordinate part 2 ('inf') is not a decimal number"


async def test_a_schema_error_is_a_bad_request_naming_the_field(soma: Client) -> None:
    with pytest.raises(BadRequest) as error:
        await soma.search("tea", top_k=0)
    assert error.value.status == 422
    assert "top_k" in error.value.detail  # the field errors, as one line
    assert [e["loc"] for e in error.value.body["errors"]] == [["body", "top_k"]]


async def test_a_payload_over_the_limit_is_too_large(soma: Client) -> None:
    with pytest.raises(PayloadTooLarge) as error:
        await soma.store("1", {"text": "x" * MAX_PAYLOAD_BYTES})
    assert error.value.status == 413 and "SOMA_MAX_PAYLOAD_BYTES" in error.value.detail


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, APIError),
        (413, PayloadTooLarge),
        (422, BadRequest),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, Unavailable),
    ],
)
async def test_each_status_has_its_error_with_the_servers_detail(
    scripted: ScriptedServer, make_client: MakeClient, status: int, kind: type[APIError]
) -> None:
    scripted.then(Reply(status, {"detail": f"scripted {status}"}, {"Retry-After": "5"}))
    client = make_client(scripted.url, token=TOKEN, retry=NO_RETRY)
    with pytest.raises(kind) as error:
        await client.stats()
    assert type(error.value) is kind
    assert (error.value.status, error.value.detail) == (status, f"scripted {status}")
    if isinstance(error.value, RateLimited):
        assert error.value.retry_after == 5.0


async def test_a_proxy_page_instead_of_json_is_still_a_typed_error(
    scripted: ScriptedServer, make_client: MakeClient
) -> None:
    scripted.then(Reply(502, raw=b"<html>Bad Gateway</html>"))
    client = make_client(scripted.url, token=TOKEN, retry=NO_RETRY)
    with pytest.raises(ServerError) as error:
        await client.stats()
    assert error.value.status == 502 and "GET /stats" in error.value.detail


async def test_an_answer_without_the_documented_fields_is_unexpected(
    scripted: ScriptedServer, make_client: MakeClient
) -> None:
    scripted.then(Reply(200, {"hello": "world"}), Reply(200, raw=b"<html>login</html>"))
    client = make_client(scripted.url, token=TOKEN, retry=NO_RETRY)
    with pytest.raises(UnexpectedResponse, match="total_memories"):
        await client.stats()
    with pytest.raises(UnexpectedResponse, match="not JSON"):
        await client.stats()
