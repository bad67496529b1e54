"""Bad values are refused before anything renders, with a message that names the culprit."""

from __future__ import annotations

import pytest

from tests.chart.helm import CHART, template

EXTERNAL = ["-f", str(CHART / "ci" / "external-values.yaml")]


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("replicaCount=two", ["replicaCount", "integer"]),
        ("service.port=99999", ["service.port", "65535"]),
        ("config.logLevel=LOUD", ["config.logLevel", "INFO"]),
        ("image.pullPolicy=Sometimes", ["image.pullPolicy", "IfNotPresent"]),
        ("externalPostgresql.url=mysql://db.x", ["externalPostgresql.url", "postgres"]),
        ("replicaCuont=2", ["replicaCuont", "allowed"]),
    ],
)
def test_schema_refuses_bad_values(setting: str, words: list[str]) -> None:
    result = template(*EXTERNAL, "--set", setting)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    # Helm 4 writes "at '/service/port': ... 65,535", Helm 3 "service.port: ... 65535".
    message = result.stderr.replace("/", ".").replace(",", "")
    for word in words:
        assert word in message, result.stderr


def test_string_replica_count_is_refused_too() -> None:
    result = template(*EXTERNAL, "--set-string", "replicaCount=2")
    assert result.returncode != 0
    assert "replicaCount" in result.stderr and "integer" in result.stderr


def test_the_chart_defaults_render_without_any_backend() -> None:
    result = template()
    assert result.returncode == 0, result.stderr


SCALING = [["--set", "replicaCount=2"], ["--set", "autoscaling.enabled=true"]]


@pytest.mark.parametrize("scaling", SCALING, ids=["replicaCount", "autoscaling"])
def test_schema_refuses_replicas_without_postgresql_and_milvus_servers(scaling: list[str]) -> None:
    result = template(*scaling)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    message = result.stderr.replace("/", ".")
    # The error names what to set: Helm 4 lists every way out, Helm 3 the first of each.
    assert "externalPostgresql.url" in message and "externalMilvus.uri" in message, message


@pytest.mark.parametrize("scaling", SCALING, ids=["replicaCount", "autoscaling"])
def test_schema_refuses_replicas_with_only_one_server(scaling: list[str]) -> None:
    result = template(*scaling, "--set", "externalPostgresql.url=postgresql://u:p@db:5432/soma")
    assert result.returncode != 0
    message = result.stderr.replace("/", ".")
    assert "externalMilvus.uri" in message and "externalPostgresql.url" not in message, message


@pytest.mark.parametrize("scaling", SCALING, ids=["replicaCount", "autoscaling"])
@pytest.mark.parametrize(
    "servers",
    [
        [
            "externalPostgresql.url=postgresql://u:p@db:5432/soma",
            "externalMilvus.uri=http://m:19530",
        ],
        ["externalPostgresql.existingSecret=db", "externalMilvus.uri=http://m:19530"],
        ["postgresql.enabled=true", "milvus.enabled=true"],
    ],
    ids=["urls", "existing-secret", "quick-trial"],
)
def test_schema_accepts_replicas_with_postgresql_and_milvus_servers(
    scaling: list[str], servers: list[str]
) -> None:
    args = [*scaling]
    for item in servers:
        args += ["--set", item]
    result = template(*args)
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout


def test_without_the_schema_the_templates_still_refuse_replicas() -> None:
    """`--skip-schema-validation` (Helm >= 3.16) reaches the template's own check."""
    result = template("--skip-schema-validation", "--set", "replicaCount=3")
    assert result.returncode != 0
    assert "More than one replica (replicaCount > 1 or autoscaling.enabled) needs" in result.stderr


def test_two_databases_at_once_are_refused() -> None:
    result = template(*EXTERNAL, "--set", "postgresql.enabled=true")
    assert result.returncode != 0
    assert "Choose one PostgreSQL" in result.stderr
