"""Bad values are refused before anything renders, with a message that names the culprit."""

from __future__ import annotations

import pytest

from tests.chart.helm import CHART, template

DEFAULTS = ["-f", str(CHART / "ci" / "defaults-values.yaml")]


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
    result = template(*DEFAULTS, "--set", setting)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    # Helm 4 writes "at '/service/port': ... 65,535", Helm 3 "service.port: ... 65535".
    message = result.stderr.replace("/", ".").replace(",", "")
    for word in words:
        assert word in message, result.stderr


def test_string_replica_count_is_refused_too() -> None:
    result = template(*DEFAULTS, "--set-string", "replicaCount=2")
    assert result.returncode != 0
    assert "replicaCount" in result.stderr and "integer" in result.stderr


def test_without_a_database_the_chart_says_what_to_set() -> None:
    result = template("--set", "externalMilvus.uri=http://milvus:19530")
    assert result.returncode != 0
    assert "SomaMemory needs PostgreSQL: set externalPostgresql.url" in result.stderr
    assert "postgresql.enabled=true for a quick trial" in result.stderr


def test_without_milvus_the_chart_says_what_to_set() -> None:
    result = template("--set", "externalPostgresql.url=postgresql://u:p@db:5432/soma")
    assert result.returncode != 0
    assert "SomaMemory needs Milvus: set externalMilvus.uri" in result.stderr


def test_two_databases_at_once_are_refused() -> None:
    result = template(*DEFAULTS, "--set", "postgresql.enabled=true")
    assert result.returncode != 0
    assert "Choose one PostgreSQL" in result.stderr
