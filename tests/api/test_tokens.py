"""API tokens scoped to namespaces and a role: minted, used, listed, revoked without a restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.cli import main
from somamemory.settings import Settings

from ..conftest import TOKEN, free_port
from ..serve import Serve

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _ns() -> str:
    return f"tok-{uuid.uuid4().hex[:10]}"


def _mint(client: TestClient, by: dict[str, str] = ADMIN, **body: object) -> dict:
    response = client.post("/admin/tokens", json=body, headers=by)
    assert response.status_code == 201, response.text
    return response.json()


def _as(token: str, namespace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Soma-Namespace": namespace}


def _store(client: TestClient, headers: dict[str, str], coord: str = "1") -> int:
    body = {"coord": coord, "payload": {"text": "a note"}}
    return client.post("/memories", json=body, headers=headers).status_code


def test_a_write_token_works_in_its_namespaces_only(client: TestClient) -> None:
    mine, other = _ns(), _ns()
    token = _mint(client, namespaces=[mine], role="write")["token"]
    assert _store(client, _as(token, mine)) == 200
    assert client.get("/memories/1", headers=_as(token, mine)).status_code == 200
    for method, path, body in [
        ("post", "/memories", {"coord": "1", "payload": {}}),
        ("get", "/memories/1", None),
        ("delete", "/memories/1", None),
        ("post", "/memories/search", {"query": "note"}),
        ("get", "/stats", None),
        ("post", "/memories/batch", {"items": [{"coord": "1", "payload": {}}]}),
    ]:
        kwargs = {"json": body} if body is not None else {}
        refused = getattr(client, method)(path, headers=_as(token, other), **kwargs)
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["code"] == "forbidden" and other in refused.json()["detail"]
    # the bootstrap token sees the other namespace untouched
    assert (
        client.get("/memories/1", headers={**ADMIN, "X-Soma-Namespace": other}).status_code == 404
    )


def test_a_read_token_reads_and_searches_but_never_writes(client: TestClient) -> None:
    namespace = _ns()
    assert _store(client, {**ADMIN, "X-Soma-Namespace": namespace}) == 200
    reader = _as(_mint(client, namespaces=[namespace], role="read")["token"], namespace)
    assert client.get("/memories/1", headers=reader).json()["memory"]["payload"]["text"] == "a note"
    assert client.get("/memories/1/versions", headers=reader).status_code == 200
    found = client.post("/memories/search", json={"query": "a note"}, headers=reader)
    assert [hit["coord"] for hit in found.json()["memories"]] == ["1.0"]
    assert client.get("/stats", headers=reader).status_code == 200
    assert _store(client, reader, "2") == 403
    assert client.delete("/memories/1", headers=reader).status_code == 403
    batch = {"items": [{"coord": "3", "payload": {}}]}
    assert client.post("/memories/batch", json=batch, headers=reader).status_code == 403
    assert client.get("/memories/1", headers=reader).status_code == 200  # nothing was deleted
    assert (
        client.post(
            "/admin/tokens", json={"namespaces": [namespace], "role": "read"}, headers=reader
        ).status_code
        == 403
    )


def test_an_admin_of_some_namespaces_manages_tokens_for_those_only(client: TestClient) -> None:
    mine, other = _ns(), _ns()
    admin = {"Authorization": f"Bearer {_mint(client, namespaces=[mine], role='admin')['token']}"}
    minted = _mint(client, by=admin, namespaces=[mine], role="read", description="for the bot")
    for namespaces in ([other], ["*"], [mine, other]):
        body = {"namespaces": namespaces, "role": "read"}
        refused = client.post("/admin/tokens", json=body, headers=admin)
        assert refused.status_code == 403, namespaces
    foreign = _mint(client, namespaces=[other], role="read")
    listed = client.get("/admin/tokens", headers=admin).json()["tokens"]
    assert minted["id"] in {t["id"] for t in listed}
    assert foreign["id"] not in {t["id"] for t in listed}
    assert all(set(t["namespaces"]) <= {mine} for t in listed)
    assert client.delete(f"/admin/tokens/{foreign['id']}", headers=admin).status_code == 404
    assert client.get("/memories/1", headers=_as(foreign["token"], other)).status_code == 404


def test_tokens_are_kept_as_digests_and_their_secret_is_shown_once(
    client: TestClient, database_url: str
) -> None:
    minted = _mint(client, namespaces=[_ns()], role="write")
    assert minted["token"].startswith("smt_")
    listed = client.get("/admin/tokens", headers=ADMIN).json()["tokens"]
    entry = next(t for t in listed if t["id"] == minted["id"])
    assert "token" not in entry

    async def row() -> asyncpg.Record:
        connection = await asyncpg.connect(database_url)
        try:
            return await connection.fetchrow("SELECT * FROM api_tokens WHERE id = $1", minted["id"])
        finally:
            await connection.close()

    stored = asyncio.run(row())
    assert bytes(stored["digest"]) == hashlib.sha256(minted["token"].encode()).digest()
    assert all(minted["token"] not in str(value) for value in stored.values())


def test_a_revoked_token_is_refused_here_at_once_and_by_other_replicas(
    client: TestClient, make_settings: Callable[..., Settings]
) -> None:
    namespace = _ns()
    minted = _mint(client, namespaces=[namespace], role="write")
    # another replica on the same PostgreSQL, checking the token store at every request
    replica = TestClient(create_app(make_settings(token_cache_seconds=0)))
    with replica:
        assert _store(replica, _as(minted["token"], namespace)) == 200
        assert _store(client, _as(minted["token"], namespace)) == 200
        revoked = client.delete(f"/admin/tokens/{minted['id']}", headers=ADMIN)
        assert revoked.status_code == 200 and revoked.json()["id"] == minted["id"]
        for replica_or_here in (client, replica):
            refused = replica_or_here.get("/memories/1", headers=_as(minted["token"], namespace))
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == "Bearer"
    again = client.delete(f"/admin/tokens/{minted['id']}", headers=ADMIN)
    assert again.status_code == 404 and again.json()["code"] == "token_not_found"
    listed = client.get("/admin/tokens", headers=ADMIN).json()["tokens"]
    assert minted["id"] not in {t["id"] for t in listed}


def test_an_expired_token_is_refused(client: TestClient) -> None:
    namespace = _ns()
    expires = datetime.now(UTC) + timedelta(seconds=1)
    token = _mint(client, namespaces=[namespace], role="write", expires_at=expires.isoformat())
    assert _store(client, _as(token["token"], namespace)) == 200  # used, so its rights are cached
    deadline = time.monotonic() + 30
    while _store(client, _as(token["token"], namespace)) == 200:
        assert time.monotonic() < deadline, "the token outlived its expiry"
        time.sleep(0.2)
    assert _store(client, _as(token["token"], namespace)) == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"namespaces": ["a"], "role": "read", "expires_at": "2001-01-01T00:00:00Z"}, 400),
        ({"namespaces": ["a"], "role": "read", "expires_at": "2099-01-01T00:00:00"}, 422),
        ({"namespaces": [], "role": "read"}, 422),
        ({"namespaces": ["a b"], "role": "read"}, 422),
        ({"namespaces": ["a"], "role": "root"}, 422),
        ({"namespaces": ["a"], "role": "read", "description": "bell\u0007"}, 422),
        ({"namespaces": ["a"], "role": "read", "description": "\ud800"}, 422),
        ({"namespaces": ["a"], "role": "read", "extra": 1}, 422),
    ],
)
def test_a_bad_token_request_says_what_is_wrong(
    client: TestClient, body: dict, status: int
) -> None:
    raw = json.dumps(body)  # ASCII escapes: a lone surrogate goes out as the client wrote it
    headers = {**ADMIN, "Content-Type": "application/json"}
    response = client.post("/admin/tokens", content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_a_token_that_is_not_ours_is_refused_without_a_lookup(client: TestClient) -> None:
    for candidate in ("smt_" + "A" * 43, "smt_short", "x" * 500, TOKEN + "x"):
        response = client.get("/stats", headers={"Authorization": f"Bearer {candidate}"})
        assert response.status_code == 401, candidate
        assert response.json()["detail"] == "invalid, expired or revoked bearer token"


def test_without_postgresql_minted_tokens_cannot_be_checked_and_say_so(
    make_settings: Callable[..., Settings],
) -> None:
    """Redis-only mode: the bootstrap token works; a minted one never seen gets 503, not a guess."""
    down = make_settings(postgres_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    with TestClient(create_app(down)) as client:
        assert client.get("/stats", headers=ADMIN).status_code == 200
        unknown = client.get("/stats", headers={"Authorization": "Bearer smt_" + "B" * 43})
        assert unknown.status_code == 503 and "PostgreSQL" in unknown.json()["detail"]
        minting = client.post(
            "/admin/tokens", json={"namespaces": ["a"], "role": "read"}, headers=ADMIN
        )
        assert minting.status_code == 503


def test_in_process_mode_keeps_tokens_in_the_process(
    make_settings: Callable[..., Settings],
) -> None:
    alone = make_settings(
        postgres_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        redis_port=free_port(),
    )
    with TestClient(create_app(alone)) as client:
        namespace = _ns()
        token = _mint(client, namespaces=[namespace], role="write")["token"]
        assert _store(client, _as(token, namespace)) == 200
        assert _store(client, _as(token, _ns())) == 403


def test_without_authentication_there_are_no_tokens_to_mint(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(api_token=None, allow_unauthenticated=True))
    with TestClient(app, base_url="http://localhost") as client:
        refused = client.post("/admin/tokens", json={"namespaces": ["a"], "role": "read"})
    assert refused.status_code == 409 and refused.json()["code"] == "authentication_off"


def test_the_token_command_mints_lists_and_revokes(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``somamemory token`` against a running service, with the token serve keeps locally (and
    ``somamemory policy``, on the same server)."""
    server = Serve(
        tmp_path / "data",
        {"POSTGRES_URL": database_url, "SOMA_FORCE_HASH_EMBEDDINGS": "1"},
    )
    try:
        server.wait_ready()
        where = ["--url", server.url, "--data-dir", str(server.data_dir)]
        namespace = _ns()
        assert (
            main(
                [
                    "token",
                    *where,
                    "create",
                    "--namespace",
                    namespace,
                    "--role",
                    "write",
                    "--expires",
                    "30d",
                ]
            )
            == 0
        )
        minted = json.loads(capsys.readouterr().out)
        assert minted["namespaces"] == [namespace] and minted["role"] == "write"
        assert main(["token", *where, "list"]) == 0
        assert minted["id"] in {t["id"] for t in json.loads(capsys.readouterr().out)}
        use = httpx.post(
            f"{server.url}/memories",
            json={"coord": "1", "payload": {}},
            headers=_as(minted["token"], namespace),
        )
        assert use.status_code == 200, use.text
        assert main(["token", *where, "revoke", minted["id"]]) == 0
        refused = httpx.get(f"{server.url}/memories/1", headers=_as(minted["token"], namespace))
        assert refused.status_code == 401
        assert main(["token", *where, "revoke", minted["id"]]) == 1
        assert "no live token" in capsys.readouterr().err
        policy = ["policy", *where]
        assert main([*policy, "set", namespace, "--episodic-ttl", "7d", "--max-memories", "9"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["default_ttl_seconds"]["episodic"] == {"value": 604800, "source": "namespace"}
        assert main([*policy, "set", namespace, "--clear", "max_memories"]) == 0
        capsys.readouterr()
        assert main([*policy, "get", namespace]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["max_memories"]["source"] == "settings"
        assert shown["default_ttl_seconds"]["episodic"]["value"] == 604800
        assert main([*policy, "set", namespace, "--max-memories", "0"]) == 1
        assert "max_memories must be" in capsys.readouterr().err
        assert main([*policy, "clear", namespace]) == 0
        assert capsys.readouterr().out.strip() == f"cleared the policy of {namespace}"
        assert minted["token"] not in server.output()  # the service never logs a token
    finally:
        server.stop()
