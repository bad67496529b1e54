"""The real images, started as real containers: what a user of `docker run` relies on.

Every container runs on the host network, on its own free port on 127.0.0.1, as the image's
unprivileged user with a read-only root filesystem (a tmpfs for /tmp), and is removed afterwards.
The images are built once per session (tests/packaging/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import kmock
import pytest
import redis
import yaml

from tests.conftest import REDIS_HOST, REDIS_PORT, create_database, drop_database, free_port
from tests.packaging import engine

# Building (the first time, every wheel is downloaded) is part of the first test's setup.
pytestmark = pytest.mark.timeout(engine.BUILD_TIMEOUT + 300)

TOKEN = "image-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DATA = "/var/lib/somamemory"
UID = 10001

# Stored texts and paraphrases that share no word with them: only meaning links them.
REMEMBERED = {
    "1,0": "My grandmother adores gardening and grows roses every spring.",
    "2,0": "The car needs new tires before winter arrives.",
    "3,0": "Quarterly revenue rose twelve percent thanks to enterprise sales.",
    "4,0": "The user is allergic to peanuts.",
}
PARAPHRASES = {
    "automobile wheels should be replaced ahead of cold season": "2.0,0.0",
    "which nuts trigger this person's food reaction?": "4.0,0.0",
    "an elderly relative who loves flowers": "1.0,0.0",
}


@dataclass
class Service:
    """A running service container and its base URL."""

    box: engine.Container
    url: str

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=AUTH, timeout=60)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=AUTH, timeout=30)


def service_env(port: int, **more: str) -> dict[str, str]:
    """The token, and where to listen: on the host network, a free port on loopback only."""
    return {"SOMA_API_TOKEN": TOKEN, "SOMA_PORT": str(port), "SOMA_HOST": "127.0.0.1", **more}


@contextlib.contextmanager
def serving(image: str, volume: str, **env: str) -> Iterator[Service]:
    """The service image running its default command on ``volume``, once /healthz answers."""
    port = free_port()
    with engine.container(
        image,
        env=service_env(port, **env),
        volumes=[f"{volume}:{DATA}"],
        extra=["--health-interval=1s", "--health-start-period=120s"],
    ) as box:
        service = Service(box, f"http://127.0.0.1:{port}")
        engine.wait_for(box, f"{service.url}/healthz", timeout=180)
        yield service


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


# ---- the service image on its embedded default ---------------------------------------------


@pytest.fixture(scope="module")
def embedded(service_image: str) -> Iterator[Service]:
    """The service image with nothing but a token: embedded PostgreSQL and milvus-lite."""
    with engine.volume() as data, serving(service_image, data) as service:
        yield service


def test_runs_as_10001_on_a_read_only_root(embedded: Service) -> None:
    assert embedded.box.process_uid() == UID
    host_config = embedded.box.inspect()["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True and host_config["NetworkMode"] == "host"
    refused = embedded.box.exec("touch", "/app/anything", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    # its state went to the volume, owned by the unprivileged user
    owners = embedded.box.exec("stat", "-c", "%u %n", f"{DATA}/postgres", f"{DATA}/milvus.db")
    assert [line.split()[0] for line in owners.stdout.splitlines()] == [str(UID)] * 2


def test_embedded_default_reports_its_backends(embedded: Service) -> None:
    response = embedded.get("/health")
    assert response.status_code == 200, response.text
    health = response.json()
    assert (health["mode"], health["degraded"]) == ("normal", False)
    backends = health["backends"]
    assert backends["postgres"] == {"ok": True, "kind": "embedded", "detail": None}
    assert backends["redis"]["kind"] == "in-process"
    assert backends["milvus"]["ok"] and backends["milvus"]["kind"] == "lite"
    # the model that ships in the image, on onnxruntime: never the hash fallback
    embedder = health["embedder"]
    assert (embedder["kind"], embedder["dim"]) == ("onnx", 384), embedder
    assert "all-MiniLM-L6-v2" in embedder["model"], embedder


def test_recalls_by_meaning_on_the_image_default_embedder(embedded: Service) -> None:
    for coord, text in REMEMBERED.items():
        stored = embedded.post(
            "/memories", {"coord": coord, "payload": {"text": text}, "memory_type": "semantic"}
        )
        assert stored.status_code == 200 and stored.json()["indexed"], stored.text
    for query, expected in PARAPHRASES.items():
        shared = {coord: words(query) & words(text) for coord, text in REMEMBERED.items()}
        assert not any(shared.values()), f"the paraphrase shares words: {shared}"
        found = embedded.post("/memories/search", {"query": query, "top_k": 4})
        assert found.status_code == 200, found.text
        ranked = [hit["coord"] for hit in found.json()["memories"]]
        assert ranked and ranked[0] == expected, (query, ranked)


def test_image_healthcheck_turns_healthy(embedded: Service) -> None:
    def health_status() -> str | None:
        status = str(embedded.box.inspect()["State"]["Health"]["Status"])
        return status if status != "starting" else None

    assert engine.wait_until(health_status, "the image's HEALTHCHECK", timeout=60) == "healthy"


def test_memories_survive_a_restart_on_the_volume(service_image: str) -> None:
    memory = {
        "coord": "7,7",
        "payload": {"text": "kept across restarts"},
        "memory_type": "episodic",
    }
    with engine.volume() as data:
        with serving(service_image, data) as first:
            assert first.post("/memories", memory).status_code == 200
            assert first.post("/memories", memory).json()["version"] == 2
            assert first.box.stop() == 0, first.box.logs()[-3000:]  # SIGTERM: a clean shutdown
        with serving(service_image, data) as second:
            again = second.get("/memories/7,7")
            assert again.status_code == 200, again.text
            kept = again.json()["memory"]
            assert (kept["payload"], kept["version"]) == (memory["payload"], 2)


# ---- the service image on the machine's PostgreSQL and Redis --------------------------------


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh, empty database on the machine's PostgreSQL (127.0.0.1:5432)."""
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"img{uuid.uuid4().hex[:10]}"
    with redis.Redis(host=REDIS_HOST, port=REDIS_PORT) as client:
        yield prefix
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


async def count_memories(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM memories"))
    finally:
        await connection.close()


def test_serve_refuses_an_unmigrated_database(service_image: str, database: str) -> None:
    env = service_env(free_port(), POSTGRES_URL=database)
    refused = engine.run_to_completion(service_image, "serve", env=env, timeout=120)
    assert refused.returncode != 0
    assert "somamemory migrate" in refused.stdout + refused.stderr


def test_migrate_then_serve_on_postgres_and_redis(
    service_image: str, database: str, redis_prefix: str
) -> None:
    backends = {
        "POSTGRES_URL": database,
        "REDIS_HOST": REDIS_HOST,
        "REDIS_PORT": str(REDIS_PORT),
        "SOMA_REDIS_KEY_PREFIX": redis_prefix,
    }
    migrated = engine.run_to_completion(service_image, "migrate", env=backends, timeout=120)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert re.search(r"schema at revision \w+", migrated.stdout), migrated.stdout

    with engine.volume() as data, serving(service_image, data, **backends) as service:
        ready = engine.wait_for(service.box, f"{service.url}/readyz", timeout=60)
        assert ready.json() == {"status": "ok"}
        backends_health = service.get("/health").json()["backends"]
        assert (
            backends_health["postgres"]["kind"] == "external" and backends_health["postgres"]["ok"]
        )
        assert backends_health["redis"]["kind"] == "external" and backends_health["redis"]["ok"]

        memory = {"coord": "5,5", "payload": {"text": "stored in the machine's PostgreSQL"}}
        stored = service.post("/memories", memory)
        assert stored.status_code == 200 and stored.json()["version"] == 1, stored.text
        read = service.get("/memories/5,5")
        assert read.status_code == 200 and read.json()["memory"]["payload"] == memory["payload"]
    assert asyncio.run(count_memories(database)) == 1
    with redis.Redis(host=REDIS_HOST, port=REDIS_PORT) as client:  # the cache was Redis
        assert any(client.scan_iter(f"{redis_prefix}*"))


# ---- the operator image against an emulated Kubernetes API ----------------------------------

SMEM = "soma.dev/v1alpha1/somamemories"


def kubeconfig(url: str, path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": url}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
        "current-context": "kmock",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o644)  # the operator reads it as uid 10001
    return path


@contextlib.asynccontextmanager
async def emulated_cluster() -> AsyncIterator[tuple[kmock.KubernetesEmulator, str]]:
    """kmock on 127.0.0.1 with the built-in kinds and the SomaMemory resource."""
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator):
        with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
            warnings.filterwarnings("ignore", "read_binary is deprecated", DeprecationWarning)
            emulator.resources.load_bundled()
        emulator.resources[SMEM] = kmock.ResourceInfo(
            kind="SomaMemory",
            singular="somamemory",
            namespaced=True,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            shortnames={"smem"},
            subresources={"status"},
        )
        yield emulator, str(emulator.url)


async def api(client: httpx.AsyncClient, path: str) -> dict[str, Any] | None:
    response = await client.get(path)
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


async def eventually(probe: Any, what: str, timeout: float = 30) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_operator_image_reconciles_a_somamemory(operator_image: str, tmp_path: Path) -> None:
    namespace, image = "images", "ghcr.io/somamemory/somamemory:9.9.9"
    async with emulated_cluster() as (_, url):
        config = kubeconfig(url, tmp_path / "kubeconfig")
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        # the chart's single-replica arguments, the liveness endpoint on loopback
        args = ["--standalone", f"--liveness={liveness}", "--all-namespaces"]
        with engine.container(
            operator_image,
            *args,
            env={"KUBECONFIG": "/etc/somamemory/kubeconfig"},
            volumes=[f"{config}:/etc/somamemory/kubeconfig:ro"],
        ) as box:
            # blocking docker calls run off the loop: kmock serves the operator from this loop
            alive = await asyncio.to_thread(engine.wait_for, box, liveness, 120)
            assert "somamemories" in alive.json()  # the operator's own probe: handlers loaded
            assert await asyncio.to_thread(box.process_uid) == UID

            body = {
                "apiVersion": "soma.dev/v1alpha1",
                "kind": "SomaMemory",
                "metadata": {"name": "memory", "namespace": namespace, "uid": str(uuid.uuid4())},
                "spec": {
                    "image": image,
                    "replicas": 1,
                    "apiTokenSecretRef": {"name": "soma-token"},
                    "postgres": {"urlSecretRef": {"name": "soma-postgres"}},
                    "milvus": {"host": "milvus"},
                },
            }
            base = f"{url}/apis/soma.dev/v1alpha1/namespaces/{namespace}/somamemories"
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                created = await client.post(base, json=body)
                assert created.status_code in (200, 201), created.text
                config_map = await eventually(
                    lambda: api(client, f"/api/v1/namespaces/{namespace}/configmaps/memory"),
                    "the ConfigMap",
                )
                assert config_map["metadata"]["ownerReferences"][0]["kind"] == "SomaMemory"

                async def job() -> dict[str, Any] | None:
                    jobs = await api(client, f"/apis/batch/v1/namespaces/{namespace}/jobs")
                    items = (jobs or {}).get("items") or []
                    return items[0] if items else None

                migration = await eventually(job, "the migration Job")
                container = migration["spec"]["template"]["spec"]["containers"][0]
                assert (container["image"], container["args"]) == (image, ["migrate"])

                async def migrating() -> bool:
                    smem = await api(client, f"{base}/memory")
                    return ((smem or {}).get("status") or {}).get("phase") == "Migrating"

                await eventually(migrating, "status.phase Migrating")
            assert await asyncio.to_thread(box.stop) == 0, box.logs()[-3000:]


# ---- both images ---------------------------------------------------------------------------


def test_images_stay_small(service_image: str, operator_image: str) -> None:
    assert engine.image_size(service_image) < 1_200_000_000
    assert engine.image_size(operator_image) < 400_000_000
    for image in (service_image, operator_image):  # never torch (gigabytes) in an image
        no_torch = engine.docker(
            "run",
            "--rm",
            "--network",
            "host",
            "--entrypoint",
            "python",
            image,
            "-c",
            "import importlib.util as u; raise SystemExit(u.find_spec('torch') is not None)",
        )
        assert no_torch.returncode == 0
