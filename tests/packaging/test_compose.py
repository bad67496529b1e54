"""docker-compose.yml and its two overrides, read statically: valid Compose, and their ports and
variables are the service's own. test_compose_run.py runs the core profile for real."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from somamemory.settings import Settings, known_env_vars
from tests.packaging.repo import ROOT

SOMA_SERVICES = {"api", "migrate"}
BACKENDS = {"postgres", "redis", "milvus", "etcd", "minio"}


BASE, PORTS, LOCAL = "docker-compose.yml", "docker-compose.override.yml", "compose.local.yml"


def load(name: str) -> dict[str, Any]:
    with (ROOT / name).open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(BASE)


def merged_config(*files: str) -> dict[str, Any]:
    """What docker-compose itself makes of the files (all of the core profile)."""
    args = [arg for name in files for arg in ("-f", name)]
    result = subprocess.run(
        ["docker-compose", *args, "--profile", "core", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SOMA_", "POSTGRES_"))},
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with no VAR set: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def defaults(name: str) -> Any:
    return Settings.model_fields[name].default


def published(service: dict[str, Any]) -> dict[int, int]:
    """{container port: host port} for every "127.0.0.1:host:container" mapping."""
    ports = {}
    for mapping in service.get("ports", []):
        address, host, container = str(mapping).split(":")
        assert address == "127.0.0.1", f"{mapping}: published beyond loopback"
        ports[int(container)] = int(host)
    return ports


@pytest.mark.parametrize("name", [BASE, PORTS, LOCAL])
def test_compose_files_match_the_compose_specification(
    name: str, compose_spec_schema: dict[str, Any]
) -> None:
    validator = jsonschema.Draft201909Validator(compose_spec_schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(load(name))]
    assert not errors


def test_every_service_is_in_the_core_profile(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SOMA_SERVICES | BACKENDS
    for name, service in compose["services"].items():
        assert service["profiles"] == ["core"], name


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "migrate":
            assert service["healthcheck"] == {"disable": True}
            assert service["restart"] == "no"
        else:
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in declared, f"{source} is a bind mount, not a named volume"
            used.add(source)
    assert (
        used == declared == {f"{b}-data" for b in ("postgres", "redis", "etcd", "minio", "milvus")}
    )


def test_published_ports_are_the_seeds(compose: dict[str, Any]) -> None:
    assert not any("ports" in service for service in compose["services"].values())
    services = load(PORTS)["services"]  # read along with docker-compose.yml by default
    assert set(services) <= set(compose["services"])
    assert published(services["api"]) == {defaults("port"): 10101}
    pg_port = urlsplit(defaults("postgres_url")).port
    assert published(services["postgres"]) == {5432: pg_port} == {5432: 5433}
    assert published(services["redis"]) == {defaults("redis_port"): 6379}
    assert published(services["milvus"])[defaults("milvus_port")] == 19530


def test_the_api_waits_for_a_successful_migration(compose: dict[str, Any]) -> None:
    api, migrate = compose["services"]["api"], compose["services"]["migrate"]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for backend in ("postgres", "redis", "milvus"):
        assert api["depends_on"][backend] == {"condition": "service_healthy"}
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    milvus = compose["services"]["milvus"]
    assert set(milvus["depends_on"]) == {"etcd", "minio"}
    assert (api["command"], migrate["command"]) == (["serve"], ["migrate"])
    assert api["build"] == migrate["build"] == {"context": ".", "dockerfile": "Dockerfile"}


@pytest.mark.parametrize("service", sorted(SOMA_SERVICES))
def test_variables_are_known_settings_with_the_seed_values(
    compose: dict[str, Any], service: str
) -> None:
    env = {k: interpolate(v) for k, v in compose["services"][service]["environment"].items()}
    assert set(env) <= known_env_vars()
    assert env["SOMA_API_TOKEN"] == "devtoken"
    assert env["POSTGRES_URL"] == "postgresql://postgres:postgres@postgres:5432/somamemory"
    assert (env["REDIS_HOST"], env["REDIS_PORT"]) == ("redis", "6379")
    assert (env["SOMA_MILVUS_HOST"], env["SOMA_MILVUS_PORT"]) == ("milvus", "19530")
    assert env["SOMA_HOST"] == "0.0.0.0"
    postgres = compose["services"]["postgres"]["environment"]
    user, password = postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"]
    assert env["POSTGRES_URL"] == (
        f"postgresql://{user}:{password}@postgres:5432/{postgres['POSTGRES_DB']}"
    )


def test_settings_built_from_the_compose_env_reach_every_backend(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in compose["services"]["api"]["environment"].items():
        monkeypatch.setenv(key, interpolate(value))
    settings = Settings()
    assert settings.postgres_configured and settings.redis_configured
    assert settings.effective_milvus_uri == "http://milvus:19530"
    assert (settings.host, settings.port) == ("0.0.0.0", 10101)
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "devtoken"


def test_api_healthcheck_calls_healthz_on_10101(compose: dict[str, Any]) -> None:
    check = " ".join(compose["services"]["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:10101/healthz" in check


def test_no_service_is_told_to_use_hash_embeddings() -> None:
    for name in (BASE, LOCAL):
        for service, config in load(name)["services"].items():
            environment = config.get("environment") or {}
            assert "SOMA_FORCE_HASH_EMBEDDINGS" not in environment, (name, service)


@pytest.mark.usefixtures("docker_engine")
def test_default_files_publish_the_seed_ports_on_loopback() -> None:
    services = merged_config()["services"]  # docker-compose.yml + docker-compose.override.yml
    api = services["api"]
    assert api["ports"] == ["127.0.0.1:10101:10101/tcp"]
    assert "network_mode" not in api
    assert api["environment"]["SOMA_HOST"] == "0.0.0.0"  # inside its own network namespace


@pytest.mark.usefixtures("docker_engine")
def test_local_override_runs_everything_on_the_host_network_on_loopback() -> None:
    config = merged_config(BASE, LOCAL)
    services = config["services"]
    assert set(services) == SOMA_SERVICES | BACKENDS
    for name, service in services.items():
        assert service["network_mode"] == "host", name
        assert "ports" not in service, name
        assert service["init"] is True, name
    for name in ("api", "migrate"):
        env = services[name]["environment"]
        assert env["SOMA_HOST"] == "127.0.0.1"
        assert env["POSTGRES_URL"] == "postgresql://postgres@127.0.0.1:5432/somamemory"
        assert (env["REDIS_HOST"], env["SOMA_MILVUS_HOST"]) == ("127.0.0.1", "127.0.0.1")
        assert services[name]["build"]["network"] == "host"
    milvus = services["milvus"]
    assert milvus["entrypoint"] == ["milvus-lite", "server"]
    assert "--host=127.0.0.1" in milvus["command"] and "--port=19530" in milvus["command"]
    assert not config.get("networks"), "host networking needs no project network"
