"""The API workload: port 10101, the probes, a locked-down pod, and only settings it knows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from somamemory.settings import Settings, known_env_vars
from tests.chart.helm import Manifest, api_workload, find, one, pod_spec

SCENARIOS = [
    "defaults",
    "external",
    "existing-secrets",
    "ha",
    "ingress",
    "monitoring",
    "quickstart",
]
WITH_SERVERS = [s for s in SCENARIOS if s != "defaults"]


def api_container(docs: list[Manifest]) -> dict[str, Any]:
    (container,) = pod_spec(api_workload(docs))["containers"]
    return container


def env_names(docs: list[Manifest], container: dict[str, Any]) -> set[str]:
    """Names set through `env` plus every key of the ConfigMaps pulled in with `envFrom`."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        names |= set(one(docs, "ConfigMap", ref)["data"])
    return names


def test_api_listens_on_10101_behind_the_service(render: Callable[..., list[Manifest]]) -> None:
    docs = render("defaults")
    container = api_container(docs)
    assert container["ports"] == [{"name": "http", "containerPort": 10101, "protocol": "TCP"}]
    assert container["args"] == ["serve"]
    service = one(docs, "Service", "soma-somamemory")
    assert service["spec"]["ports"][0]["port"] == 10101
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert Settings.model_fields["port"].default == 10101


@pytest.mark.parametrize("scenario", ["defaults", "external"])
def test_probes_use_healthz_and_readyz(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    container = api_container(render(scenario))
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # The embedded default runs initdb, the migrations and the model load before /healthz answers.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 240


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        ("defaults", "StatefulSet"),
        ("defaults", "Pod"),
        ("external", "Deployment"),
        ("external", "Job"),
    ],
)
def test_somamemory_pods_are_non_root_read_only_and_capability_free(
    render: Callable[..., list[Manifest]], scenario: str, kind: str
) -> None:
    (workload,) = [
        d for d in find(render(scenario), kind) if d["metadata"]["name"].startswith("soma-")
    ]
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsUser"] == 10001
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["requests"]


def test_with_servers_only_scratch_space_is_writable(render: Callable[..., list[Manifest]]) -> None:
    """/tmp and the data directory (the image user's home, for caches) are emptyDirs."""
    docs = render("external")
    spec = pod_spec(one(docs, "Deployment"))
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/var/lib/somamemory": "data"}
    assert all(set(v) == {"name", "emptyDir"} for v in spec["volumes"])
    data_dir = one(docs, "ConfigMap", "soma-somamemory")["data"]["SOMA_DATA_DIR"]
    assert data_dir == "/var/lib/somamemory"


def test_service_links_are_off_so_redis_port_stays_a_number(
    render: Callable[..., list[Manifest]],
) -> None:
    external = render("external")
    for workload in [
        api_workload(render("defaults")),
        one(external, "Deployment"),
        one(external, "Job"),
    ]:
        assert pod_spec(workload)["enableServiceLinks"] is False


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_variable_the_chart_sets_is_a_known_setting(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    docs = render(scenario)
    known = known_env_vars()
    containers = [api_container(docs)] + [pod_spec(j)["containers"][0] for j in find(docs, "Job")]
    for container in containers:
        unknown = env_names(docs, container) - known
        assert not unknown, f"{scenario}: {container['name']} sets unknown {sorted(unknown)}"


@pytest.mark.parametrize("scenario", WITH_SERVERS)
def test_the_api_gets_its_token_database_and_vector_store(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    docs = render(scenario)
    names = env_names(docs, api_container(docs))
    assert {"SOMA_API_TOKEN", "POSTGRES_URL", "SOMA_MILVUS_URI", "SOMA_HOST", "SOMA_PORT"} <= names


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_hash_embeddings_are_off_unless_asked(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    docs = render(scenario)
    assert "SOMA_FORCE_HASH_EMBEDDINGS" not in env_names(docs, api_container(docs))
    forced = render(scenario, "config.forceHashEmbeddings=true")
    data = one(forced, "ConfigMap", "soma-somamemory")["data"]
    assert data["SOMA_FORCE_HASH_EMBEDDINGS"] == "true"


def test_the_configmap_is_accepted_by_the_settings_object(
    render: Callable[..., list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render("ha")
    for key, value in one(docs, "ConfigMap", "soma-somamemory")["data"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POSTGRES_URL", "postgresql://u:p@db:5432/somamemory")
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.port == 10101
    assert settings.redis_configured and settings.redis_host == "redis.cache.svc"
    assert settings.effective_milvus_uri == "http://milvus-proxy.milvus.svc:19530"
    assert settings.force_hash_embeddings is False
    assert settings.enable_batch_upsert is True


def _settings_from(docs: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a pod would read: its ConfigMap plus its plain env (secrets as placeholders)."""
    for name in known_env_vars():  # nothing from this shell leaks in
        monkeypatch.delenv(name, raising=False)
    for key, value in one(docs, "ConfigMap", "soma-somamemory")["data"].items():
        monkeypatch.setenv(key, value)
    for item in api_container(docs)["env"]:
        monkeypatch.setenv(item["name"], item.get("value", "from-a-secret"))
    return Settings()


def test_the_default_configmap_selects_the_embedded_default(
    render: Callable[..., list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings_from(render("defaults"), monkeypatch)
    assert settings.redacted()["postgres"] == "embedded"
    assert settings.redacted()["redis"] == "in-process"
    assert settings.effective_milvus_uri == "/var/lib/somamemory/milvus.db"
    assert settings.force_hash_embeddings is False
    assert settings.embeddings_url is None  # so the local model embeds
