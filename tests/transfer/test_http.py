"""``GET /export`` and ``POST /import`` on the session's app (real PostgreSQL, Redis, milvus-lite,
the local model): a round trip into a fresh namespace (expiry and links included), re-import,
format and auth refusals."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from somamemory.interchange.fileformat import FORMAT_VERSION

from ..conftest import DIM, TOKEN

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _as(token: str, namespace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Soma-Namespace": namespace}


def _mint(client: TestClient, role: str, *namespaces: str) -> str:
    body = {"namespaces": list(namespaces), "role": role}
    response = client.post("/admin/tokens", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def _store(client: TestClient, headers: dict[str, str], coord: str, **body: Any) -> None:
    response = client.post("/memories", json={"coord": coord, **body}, headers=headers)
    assert response.status_code == 200, response.text


def _history(client: TestClient, headers: dict[str, str], coord: str) -> list[dict[str, Any]]:
    response = client.get(f"/memories/{coord}/versions", headers=headers)
    assert response.status_code == 200, response.text
    return [
        {k: v for k, v in version.items() if k != "namespace"}
        for version in response.json()["versions"]
    ]


def _export(client: TestClient, headers: dict[str, str], **params: Any) -> bytes:
    response = client.get("/export", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return response.content


def test_export_then_import_into_a_fresh_namespace_gives_identical_memories(
    client: TestClient, headers: dict[str, str], namespace: str
) -> None:
    for n in range(3):
        _store(client, headers, "1", payload={"text": f"tea note {n}"}, importance=n / 3)
    _store(client, headers, "2", payload={"text": "own vector"}, vector=[0.5] * DIM)
    _store(client, headers, "3", payload={"text": "first life"})
    client.delete("/memories/3", headers=headers)
    _store(client, headers, "3", payload={"text": "second life"}, memory_type="semantic")
    _store(client, headers, "4", payload={"text": "gone"})
    client.delete("/memories/4", headers=headers)
    _store(client, headers, "5", payload={"text": "kept"}, ttl_seconds=3600, refresh_on_read=True)
    for start, end, kind, extra in [
        ("1", "2", "caused_by", {"strength": 0.5, "metadata": {"why": "tea"}}),
        ("2", "5", "related", {}),
    ]:
        body = {"from_coord": start, "to_coord": end, "link_type": kind, **extra}
        linked = client.post("/graph/link", json=body, headers=headers)
        assert linked.status_code == 200, linked.text

    dump = _export(client, headers)
    head, *lines = [json.loads(line) for line in dump.decode().splitlines()]
    assert head["format"] == "somamemory.export" and head["memories"] == 4 and head["links"] == 2
    memories, links = lines[:4], lines[4:]
    assert {m["coord"] for m in memories} == {"1.0", "2.0", "3.0", "5.0"}  # not the deleted one
    assert [(k["kind"], k["from_coord"], k["to_coord"]) for k in links] == [
        ("link", "1.0", "2.0"),
        ("link", "2.0", "5.0"),
    ]
    assert {line["namespace"] for line in lines} == {namespace}

    fresh = f"t-{uuid.uuid4().hex[:12]}"
    into = {**headers, "X-Soma-Namespace": fresh}
    answer = client.post("/import", params={"into": fresh}, content=dump, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"read": 4, "imported": 4, "links": 2, "namespaces": [fresh]}

    # exported again, before any read here: the same file, expiry and links to the byte
    assert _export(client, into).split(b"\n", 1)[1] == dump.split(b"\n", 1)[1].replace(
        f'"namespace":"{namespace}"'.encode(), f'"namespace":"{fresh}"'.encode()
    )
    again = client.post("/import", params={"into": fresh}, content=dump, headers=headers)
    assert again.json() == {"read": 4, "imported": 0, "links": 0, "namespaces": [fresh]}

    for coord in ("1", "2", "3"):
        assert _history(client, into, coord) == _history(client, headers, coord)
    moved = client.get("/memories/3", headers=into).json()["memory"]
    assert moved["payload"] == {"text": "second life"} and moved["version"] == 2
    deleted_at = _history(client, into, "3")[0]["deleted_at"]
    gap = client.get("/memories/3", params={"as_of": deleted_at}, headers=into)
    assert gap.status_code == 404  # the delete moved with the history
    search = client.post("/memories/search", json={"query": "tea note 2"}, headers=into)
    assert search.json()["memories"][0]["coord"] == "1.0"  # vectors written on import
    kept = client.get("/memories/5", headers=into).json()["memory"]
    assert kept["refresh_on_read"] is True and kept["ttl_seconds"] == 3600
    walk = {"coord": "1", "k_hop": 2}
    near = client.get("/graph/neighbors", params=walk, headers=into)
    assert near.status_code == 200, near.text
    assert near.json() == client.get("/graph/neighbors", params=walk, headers=headers).json()

    with_deleted = _export(client, headers, include_deleted="true").decode().splitlines()
    assert json.loads(with_deleted[0])["memories"] == 5
    coords = {json.loads(line).get("coord") for line in with_deleted[1:]}
    assert coords == {"1.0", "2.0", "3.0", "4.0", "5.0", None}  # None: the links


def test_a_newer_format_or_a_bad_line_is_refused_with_400(
    client: TestClient, headers: dict[str, str], namespace: str
) -> None:
    newer = json.dumps({"format": "somamemory.export", "version": FORMAT_VERSION + 1})
    refused = client.post("/import", content=newer + "\n", headers=headers)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_input"
    assert f"format version {FORMAT_VERSION + 1}" in refused.json()["detail"]

    head = json.dumps({"format": "somamemory.export", "version": FORMAT_VERSION})
    bad = client.post("/import", content=f'{head}\n{{"coord": 1}}\n', headers=headers)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("line 2:")
    odd = client.post("/import", content=f'{head}\n{{"kind": "edge"}}\n', headers=headers)
    assert odd.status_code == 400 and "kind 'edge'" in odd.json()["detail"]
    # a link whose ends are not here is left out; the import goes on
    link = {"kind": "link", "namespace": namespace, "from_coord": "1", "to_coord": "2"}
    link |= {"link_type": "related", "created_at": "2026-01-02T00:00:00Z"}
    lone = client.post("/import", content=f"{head}\n{json.dumps(link)}\n", headers=headers)
    assert lone.status_code == 200 and lone.json()["links"] == 0
    assert client.get("/export", headers=headers).text.count("\n") == 1  # nothing written


def test_export_needs_read_and_import_needs_write_on_every_namespace(
    client: TestClient, headers: dict[str, str], namespace: str
) -> None:
    _store(client, headers, "1", payload={"text": "mine"})
    dump = _export(client, headers)
    other = f"t-{uuid.uuid4().hex[:12]}"
    reader = _mint(client, "read", namespace)
    writer = _mint(client, "write", other)

    assert client.get("/export", headers=_as(reader, namespace)).status_code == 200
    assert client.get("/export", headers=_as(reader, other)).status_code == 403
    everything = client.get(
        "/export", params={"all_namespaces": "true"}, headers=_as(reader, namespace)
    )
    assert everything.status_code == 403
    assert client.post("/import", content=dump, headers=_as(reader, namespace)).status_code == 403
    # the file names a namespace this writer may not write; into= one it may is fine
    refused = client.post("/import", content=dump, headers=_as(writer, other))
    assert refused.status_code == 403 and namespace in refused.json()["detail"]
    moved = client.post("/import", params={"into": other}, content=dump, headers=_as(writer, other))
    assert moved.status_code == 200 and moved.json()["imported"] == 1
    admin_all = client.get("/export", params={"all_namespaces": "true"}, headers=ADMIN)
    assert (
        admin_all.status_code == 200
        and json.loads(admin_all.text.split("\n")[0])["namespace"] is None
    )
