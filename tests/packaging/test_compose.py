"""docker-compose.yml: valid Compose, and its ports and variables are the service's own."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from somamemory.settings import Settings, known_env_vars
from tests.packaging.repo import ROOT

SOMA_SERVICES = {"api", "migrate"}
BACKENDS = {"postgres", "redis", "milvus", "etcd", "minio"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (ROOT / "docker-compose.yml").open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with no VAR set: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def defaults(name: str) -> Any:
    return Settings.model_fields[name].default


def published(service: dict[str, Any]) -> dict[int, int]:
    """{container port: host port} for every "host:container" mapping."""
    pairs = (str(p).split(":") for p in service.get("ports", []))
    return {int(container): int(host) for host, container in pairs}


def test_compose_file_matches_the_compose_specification(
    compose: dict[str, Any], compose_spec_schema: dict[str, Any]
) -> None:
    validator = jsonschema.Draft201909Validator(compose_spec_schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
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
    services = compose["services"]
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
