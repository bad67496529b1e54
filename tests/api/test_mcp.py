"""``/mcp``: an agent reaches the memory through the official MCP SDK's own client.

Against ``somamemory serve`` (real uvicorn, the session's PostgreSQL and Redis, milvus-lite and
the bundled embedding model, since recall is judged by meaning), with the same bearer tokens and
namespace rules as the REST API.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from somamemory.app import create_app
from somamemory.settings import Settings

from ..conftest import REDIS_HOST, REDIS_PORT
from ..conftest import TOKEN as CONFTEST_TOKEN
from ..serve import Serve

TOKEN = "mcp-test-token"
TOOLS = {"remember", "recall", "fetch", "forget", "link"}
# a raw MCP message, for what the HTTP layer answers before any MCP client logic
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-http", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_prefix: str
) -> Iterator[Serve]:
    server = Serve(
        tmp_path_factory.mktemp("mcp") / "data",
        {
            "SOMA_API_TOKEN": TOKEN,
            "POSTGRES_URL": database_url,
            "REDIS_HOST": REDIS_HOST,
            "REDIS_PORT": str(REDIS_PORT),
            "SOMA_REDIS_KEY_PREFIX": redis_prefix,
        },
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def agent(
    served: Serve, token: str, namespace: str, era: str = "handshake"
) -> AsyncIterator[ClientSession]:
    """An MCP session as an agent opens one: the URL, a bearer token and a namespace header.

    ``era``: the ``initialize`` handshake of the protocol's earlier versions, or the
    2026-07-28 version's ``server/discover``, after which every request stands alone."""
    headers = {"Authorization": f"Bearer {token}", "X-Soma-Namespace": namespace}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{served.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        if era == "handshake":
            await session.initialize()
        else:
            assert era in (await session.discover()).supported_versions
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured answer; the call must succeed."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    return result.structured_content


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The message of a tool error; the call must fail as a tool error, not a protocol one."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    return _text(result)


def _text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def _mint(served: Serve, namespaces: list[str], role: str) -> str:
    response = httpx.post(
        f"{served.url}/admin/tokens",
        json={"namespaces": namespaces, "role": role},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def _ns() -> str:
    return f"mcp-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("era", ["handshake", "2026-07-28"])
async def test_an_agent_remembers_recalls_fetches_links_and_forgets(
    served: Serve, era: str
) -> None:
    namespace = _ns()
    async with agent(served, TOKEN, namespace, era) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        assert all(tool.description and "\n" not in tool.description for tool in tools.values())
        assert set(tools["remember"].input_schema["required"]) == {"coord", "payload"}
        assert tools["recall"].input_schema["properties"]["top_k"]["type"] == "integer"
        assert tools["fetch"].annotations is not None and tools["fetch"].annotations.read_only_hint

        tea = await call(
            session,
            "remember",
            coord="1,2,3",
            payload={"text": "The user drinks green tea every morning", "topic": "habits"},
            memory_type="semantic",
            importance=0.8,
        )
        assert tea == {
            "coord": "1.0,2.0,3.0",
            "memory_type": "semantic",
            "ok": True,
            "namespace": namespace,
            "version": 1,
            "indexed": True,
        }
        await call(
            session,
            "remember",
            coord="4,5,6",
            payload={"text": "The car's winter tyres are in the garage", "topic": "chores"},
        )

        found = await call(session, "recall", query="what does the user like to drink?", top_k=2)
        assert [hit["coord"] for hit in found["memories"]] == ["1.0,2.0,3.0", "4.0,5.0,6.0"]
        only = await call(session, "recall", query="drink", filters={"topic": "chores"})
        assert [hit["coord"] for hit in only["memories"]] == ["4.0,5.0,6.0"]
        important = {"$or": [{"importance": {"$gte": 0.5}}, {"topic": {"$in": ["travel"]}}]}
        typed = await call(session, "recall", query="drink", filters=important)
        assert [hit["coord"] for hit in typed["memories"]] == ["1.0,2.0,3.0"]
        episodic = await call(session, "recall", query="drink", memory_type="episodic")
        assert [hit["coord"] for hit in episodic["memories"]] == ["4.0,5.0,6.0"]

        memory = await call(session, "fetch", coord="1.0, 2, 3")
        assert memory["payload"]["text"] == "The user drinks green tea every morning"
        assert (memory["importance"], memory["version"]) == (0.8, 1)

        linked = await call(
            session, "link", from_coord="1,2,3", to_coord="4,5,6", link_type="same_morning"
        )
        assert linked["ok"] and linked["created"] and linked["link_type"] == "same_morning"
        # what the agent linked is the service's graph: the REST API sees it
        neighbours = httpx.get(
            f"{served.url}/graph/neighbors",
            params={"coord": "1,2,3"},
            headers={"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace},
        )
        assert [n["coord"] for n in neighbours.json()["neighbors"]] == ["4.0,5.0,6.0"]

        gone = await call(session, "forget", coord="1,2,3")
        assert (gone["coord"], gone["deleted"], gone["receipt"]["canonical"]) == (
            "1.0,2.0,3.0",
            True,
            "done",
        )
        assert (await call(session, "forget", coord="1,2,3"))["deleted"] is False

        # errors come back as tool errors with the service's message, the session goes on
        assert "memory_not_found (404)" in await refused(session, "fetch", coord="1,2,3")
        assert "404" in await refused(session, "link", from_coord="1,2,3", to_coord="4,5,6")
        assert "invalid_coordinate (400)" in await refused(
            session, "remember", coord="north", payload={}
        )
        assert "importance" in await refused(
            session, "remember", coord="7", payload={}, importance="very"
        )
        assert "SOMA_MAX_TOP_K" in await refused(session, "recall", query="tea", top_k=500)
        assert "mode" in await refused(session, "recall", query="tea", mode="telepathy")
        assert (await call(session, "fetch", coord="4,5,6"))["coord"] == "4.0,5.0,6.0"


def test_without_a_token_mcp_answers_401_like_the_rest_api(served: Serve) -> None:
    for headers in (ACCEPT, {**ACCEPT, "Authorization": "Bearer not-the-token"}):
        response = httpx.post(f"{served.url}/mcp", json=INITIALIZE, headers=headers)
        rest = httpx.get(f"{served.url}/memories/1", headers=headers)
        assert response.status_code == rest.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthorized" and response.json() == rest.json()
    # stateless: there is no stream to open or session to end
    listen = httpx.get(f"{served.url}/mcp", headers={"Authorization": f"Bearer {TOKEN}"})
    assert listen.status_code == 405 and listen.headers["allow"] == "POST"
    assert listen.json()["code"] == "method_not_allowed"


async def test_a_read_token_recalls_but_never_writes_and_stays_in_its_namespace(
    served: Serve,
) -> None:
    mine, other = _ns(), _ns()
    async with agent(served, TOKEN, mine) as admin:
        await call(admin, "remember", coord="1", payload={"text": "a note"})
        await call(admin, "remember", coord="2", payload={"text": "another note"})
    reader = _mint(served, [mine], "read")
    async with agent(served, reader, mine) as session:
        assert (await call(session, "fetch", coord="1"))["payload"] == {"text": "a note"}
        assert (await call(session, "recall", query="a note", top_k=1))["memories"]
        writes: list[tuple[str, dict[str, Any]]] = [
            ("remember", {"coord": "3", "payload": {}}),
            ("forget", {"coord": "1"}),
            ("link", {"from_coord": "1", "to_coord": "2"}),
        ]
        for tool, arguments in writes:
            message = await refused(session, tool, **arguments)
            assert "forbidden (403)" in message and "'read'" in message, (tool, message)
        assert (await call(session, "fetch", coord="1"))["version"] == 1  # nothing was written
    async with agent(served, reader, other) as session:
        for tool, arguments in [("fetch", {"coord": "1"}), ("recall", {"query": "a note"})]:
            message = await refused(session, tool, **arguments)
            assert "forbidden (403)" in message and other in message, (tool, message)
    writer = _mint(served, [mine], "write")
    async with agent(served, writer, other) as session:
        assert "forbidden (403)" in await refused(session, "remember", coord="1", payload={})


def test_mcp_requests_count_against_the_token_s_rate_limit(
    make_settings: Callable[..., Settings],
) -> None:
    """The gate's per-token budget covers /mcp like any route (one MCP message, one request)."""
    settings = make_settings(rate_limit_max=3, rate_limit_window=3600, force_hash_embeddings=True)
    headers = {**ACCEPT, "Authorization": f"Bearer {CONFTEST_TOKEN}", "X-Soma-Namespace": _ns()}
    with TestClient(create_app(settings)) as client:
        answers = [client.post("/mcp", json=INITIALIZE, headers=headers) for _ in range(3)]
        assert [a.status_code for a in answers] == [200] * 3, answers[-1].text
        assert answers[0].json()["result"]["serverInfo"]["name"] == "somamemory"
        refused = client.post("/mcp", json=INITIALIZE, headers=headers)
        assert refused.status_code == 429 and "retry-after" in refused.headers
        assert client.get("/stats", headers=headers).status_code == 429  # one budget
