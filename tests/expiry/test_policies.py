"""Per-namespace policies over HTTP on PostgreSQL, with a hand-moved clock: a namespace's own
default TTL and cap apply to its writes only, a write's own TTL wins, the settings fill in what
a namespace leaves out, only an admin of the namespace may change them, and bad values are 400s."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from somamemory.errors import BackendUnavailable
from somamemory.expiry import ExpiryPolicy
from somamemory.live import LiveStores
from somamemory.policies import Policies
from somamemory.stores.inprocess import InProcessStore
from somamemory.stores.inprocess_policies import InProcessPolicyStore
from somamemory.stores.outbox import NoOutbox
from somamemory.stores.postgres_policies import PostgresPolicyStore
from somamemory.stores.postgres_pool import create_pool
from somamemory.stores.protocols import PolicyStore

from ..conftest import TOKEN
from .conftest import Life

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _headers(namespace: str) -> dict[str, str]:
    return {**ADMIN, "X-Soma-Namespace": namespace}


def _policy(life: Life, namespace: str, method: str = "get", **body: Any) -> dict[str, Any]:
    path = f"/admin/namespaces/{namespace}/policy"
    response = life.client.request(method, path, json=body or None, headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _expiry(life: Life, namespace: str, coord: str, **body: Any) -> datetime | None:
    """Store a memory; its expiry as the service answers it."""
    body = {"coord": coord, "payload": {"text": coord}, **body}
    stored = life.client.post("/memories", json=body, headers=_headers(namespace))
    assert stored.status_code == 200, stored.text
    read = life.client.get(f"/memories/{coord}", headers=_headers(namespace))
    moment = read.json()["memory"]["expires_at"]
    return datetime.fromisoformat(moment) if moment is not None else None


def test_a_namespace_default_ttl_applies_to_its_writes_without_one(
    life: Life, namespace: str
) -> None:
    other = f"{namespace}-other"
    _policy(life, namespace, "put", default_ttl_seconds={"episodic": 100})
    after = life.clock() + timedelta(seconds=100)
    assert _expiry(life, namespace, "1") == after
    assert _expiry(life, namespace, "2", ttl_seconds=500) == life.clock() + timedelta(seconds=500)
    assert _expiry(life, namespace, "3", memory_type="semantic") is None  # no default for it
    assert _expiry(life, other, "1") is None  # another namespace: the settings (none)
    batch = life.client.post(
        "/memories/batch",
        json={"items": [{"coord": "4", "payload": {}}]},
        headers=_headers(namespace),
    )
    assert batch.status_code == 200, batch.text
    four = life.client.get("/memories/4", headers=_headers(namespace)).json()["memory"]
    assert datetime.fromisoformat(four["expires_at"]) == after

    life.clock.advance(101)
    assert life.client.get("/memories/1", headers=_headers(namespace)).status_code == 404
    assert life.client.get("/memories/2", headers=_headers(namespace)).status_code == 200
    assert life.client.get("/memories/1", headers=_headers(other)).status_code == 200

    cleared = life.client.delete(f"/admin/namespaces/{namespace}/policy", headers=ADMIN)
    assert cleared.json() == {"namespace": namespace, "cleared": True}
    assert _expiry(life, namespace, "5") is None  # the settings apply again


def test_the_settings_fill_in_what_a_namespace_leaves_out(life: Life, namespace: str) -> None:
    before = _policy(life, namespace)
    assert before == {
        "namespace": namespace,
        "default_ttl_seconds": {
            "episodic": {"value": None, "source": "settings"},
            "semantic": {"value": None, "source": "settings"},
        },
        "max_memories": {"value": None, "source": "settings"},
        "updated_at": None,
    }
    saved = life.service.expiry
    life.service.expiry = ExpiryPolicy(
        default_ttl_seconds={"semantic": 3600}, max_ttl_seconds=86_400
    )
    life.service.max_memories = 50
    try:
        after = _policy(
            life, namespace, "put", default_ttl_seconds={"episodic": 60}, max_memories=5
        )
        assert after["default_ttl_seconds"] == {
            "episodic": {"value": 60, "source": "namespace"},
            "semantic": {"value": 3600, "source": "settings"},
        }
        assert after["max_memories"] == {"value": 5, "source": "namespace"}
        assert after["updated_at"] is not None
        assert _policy(life, namespace) == after
        assert _expiry(life, namespace, "1", memory_type="semantic") == life.clock() + timedelta(
            seconds=3600
        )
        # a field left out is kept; null clears one
        changed = _policy(life, namespace, "put", default_ttl_seconds={"episodic": None})
        assert changed["default_ttl_seconds"]["episodic"] == {"value": None, "source": "settings"}
        assert changed["max_memories"] == {"value": 5, "source": "namespace"}
        changed = _policy(life, namespace, "put", max_memories=None)
        assert changed["max_memories"] == {"value": 50, "source": "settings"}
        _policy(life, namespace, "put", default_ttl_seconds={"episodic": 60, "semantic": 60})
        changed = _policy(life, namespace, "put", default_ttl_seconds=None)  # both types
        assert changed["default_ttl_seconds"] == {
            "episodic": {"value": None, "source": "settings"},
            "semantic": {"value": 3600, "source": "settings"},
        }
    finally:
        life.service.expiry = saved


def test_a_namespace_cap_evicts_in_that_namespace_only(life: Life, namespace: str) -> None:
    other = f"{namespace}-other"
    evicted_before = life.metric("somamemory_memories_evicted_total")
    _policy(life, namespace, "put", max_memories=2)
    for coord, importance in (("1", 0.5), ("2", 0.1), ("3", 0.9)):
        for where in (namespace, other):
            body = {"coord": coord, "payload": {}, "importance": importance}
            assert life.client.post("/memories", json=body, headers=_headers(where)).is_success
    assert life.client.get("/memories/2", headers=_headers(namespace)).status_code == 404
    assert life.client.get("/stats", headers=_headers(namespace)).json()["total_memories"] == 2
    assert life.client.get("/stats", headers=_headers(other)).json()["total_memories"] == 3
    assert life.metric("somamemory_memories_evicted_total") == evicted_before + 1


def test_only_an_admin_of_the_namespace_may_read_or_change_its_policy(
    life: Life, namespace: str
) -> None:
    path = f"/admin/namespaces/{namespace}/policy"

    def mint(role: str, namespaces: list[str]) -> dict[str, str]:
        body = {"namespaces": namespaces, "role": role}
        minted = life.client.post("/admin/tokens", json=body, headers=ADMIN)
        assert minted.status_code == 201, minted.text
        return {"Authorization": f"Bearer {minted.json()['token']}"}

    writer = mint("write", [namespace])
    stranger = mint("admin", [f"{namespace}-other"])
    owner = mint("admin", [namespace])
    body = {"max_memories": 10}
    for headers in (writer, stranger):
        for method in ("get", "put", "delete"):
            response = life.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "forbidden"
    assert life.client.get(path).status_code == 401
    assert life.client.put(path, json=body, headers=owner).status_code == 200
    assert _policy(life, namespace)["max_memories"] == {"value": 10, "source": "namespace"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"default_ttl_seconds": {"episodic": 0}}, "default_ttl_seconds.episodic must be"),
        ({"default_ttl_seconds": {"semantic": -5}}, "from 1 to 86400 (SOMA_MAX_TTL_SECONDS)"),
        ({"default_ttl_seconds": {"episodic": 86_401}}, "from 1 to 86400"),
        ({"max_memories": 0}, "max_memories must be"),
        ({"max_memories": 10**9 + 1}, "from 1 to 1000000000"),
        ({}, "give default_ttl_seconds or max_memories"),
    ],
)
def test_a_bad_policy_is_a_400_saying_what_is_wrong(
    life: Life, namespace: str, body: dict[str, Any], words: str
) -> None:
    response = life.client.put(f"/admin/namespaces/{namespace}/policy", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"
    assert words in response.json()["detail"]


def test_a_malformed_namespace_or_field_is_refused(life: Life) -> None:
    bad = life.client.get("/admin/namespaces/no%20spaces/policy", headers=ADMIN)
    assert bad.status_code == 400, bad.text
    wrong = {"default_ttl_seconds": {"procedural": 60}}
    assert (
        life.client.put("/admin/namespaces/ns/policy", json=wrong, headers=ADMIN).status_code == 422
    )


async def _agree(store: PolicyStore) -> None:
    """What either store does with changes: merge the given fields, null clears, delete."""
    assert await store.get("ns") is None
    first = await store.update("ns", {"episodic_ttl_seconds": 60, "max_memories": 5})
    assert (first.default_ttl_seconds, first.max_memories) == ({"episodic": 60}, 5)
    second = await store.update("ns", {"semantic_ttl_seconds": 30, "max_memories": None})
    assert (second.default_ttl_seconds, second.max_memories) == (
        {"episodic": 60, "semantic": 30},
        None,
    )
    assert await store.get("ns") == second
    assert await store.delete("ns") is True
    assert await store.delete("ns") is False
    assert await store.get("ns") is None


def test_the_postgres_and_in_process_policy_stores_agree(life: Life) -> None:
    async def run() -> None:
        await _agree(InProcessPolicyStore())
        pool = await create_pool(life.database, min_size=1, max_size=1, timeout=5)
        try:
            await pool.execute("DELETE FROM namespace_policies WHERE namespace = 'ns'")
            await _agree(PostgresPolicyStore(pool))
        finally:
            await pool.close()

    asyncio.run(run())


def test_while_the_policy_store_is_away_writes_use_the_last_policy_read_or_the_settings() -> None:
    async def run() -> None:
        live = LiveStores(
            InProcessStore(),
            None,
            NoOutbox(),
            "in-process",
            "down",
            policies=InProcessPolicyStore(),
        )
        policies = Policies(live, cache_seconds=0)  # every read asks the store
        await policies.update("seen", {"episodic_ttl_seconds": 60})
        live.policies = None  # PostgreSQL went away (Redis-only mode)
        kept = await policies.of("seen")
        assert kept is not None and kept.default_ttl_seconds == {"episodic": 60}
        assert await policies.of("never-seen") is None  # the settings apply
        with pytest.raises(BackendUnavailable):  # the admin routes answer 503
            await policies.read("seen")

    asyncio.run(run())
