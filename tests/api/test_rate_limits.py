"""Rate limits per token: SOMA_RATE_LIMIT_MAX requests per SOMA_RATE_LIMIT_WINDOW seconds.

Shared by replicas through Redis (two apps on one Redis prefix), per process without Redis.
Probes and /metrics are never limited. Hash embeddings: these tests do not judge meaning.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack

from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings

from ..conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "limits"}
LIMITED = {"rate_limit_max": 5, "rate_limit_window": 3600, "force_hash_embeddings": True}


def test_replicas_share_one_budget_per_token_through_redis(
    make_settings: Callable[..., Settings],
) -> None:
    prefix = f"soma-test-rate-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(
                TestClient(create_app(make_settings(redis_key_prefix=prefix, **LIMITED)))
            )
            for _ in range(2)
        ]
        answers = [replicas[n % 2].get("/stats", headers=AUTH) for n in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        refused = replicas[1].get("/stats", headers=AUTH)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        assert "rate limit" in refused.json()["detail"]
        assert (
            replicas[0]
            .post("/memories", json={"coord": "1", "payload": {}}, headers=AUTH)
            .status_code
            == 429
        )
        for replica in replicas:  # the probes and metrics stay open
            assert replica.get("/healthz").status_code == 200
            assert replica.get("/readyz").status_code == 200
            assert replica.get("/metrics").status_code == 200


def test_without_redis_each_process_counts_alone(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(redis_host="127.0.0.1", redis_port=1, **LIMITED)  # nothing there
    with TestClient(create_app(settings)) as client:
        assert [client.get("/stats", headers=AUTH).status_code for _ in range(6)] == [200] * 5 + [
            429
        ]
        # a wrong token is refused by authentication, never counted against the right one
        assert client.get("/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_no_limit_by_default(client: TestClient) -> None:
    assert {client.get("/stats", headers=AUTH).status_code for _ in range(30)} == {200}
