"""NOTES.txt tells the user how to reach the service, where the token is, and how to scale out."""

from __future__ import annotations

from tests.chart.helm import CHART, NAMESPACE, RELEASE, run_helm


def notes(values: str, *sets: str) -> str:
    args = ["install", RELEASE, str(CHART), "--dry-run=client", "--namespace", NAMESPACE]
    args += ["-f", str(CHART / "ci" / f"{values}-values.yaml")]
    for item in sets:
        args += ["--set", item]
    result = run_helm(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_show_port_forward_and_the_token_secret() -> None:
    text = notes("defaults")
    assert "kubectl port-forward -n memory svc/soma-somamemory 10101:10101" in text
    assert "kubectl get secret -n memory soma-somamemory -o jsonpath='{.data.api-token}'" in text
    assert "Authorization: Bearer $SOMA_API_TOKEN" in text
    assert "helm test soma" in text


def test_notes_name_the_users_own_token_secret() -> None:
    text = notes("existing-secrets")
    assert "kubectl get secret -n memory somamemory-auth -o jsonpath='{.data.token}'" in text


def test_notes_show_the_ingress_url() -> None:
    assert "export SOMA_URL=https://memory.example.com" in notes("ingress")


def test_notes_warn_about_trial_backends_and_replicas_without_redis() -> None:
    assert "quick-trial backends are on" in notes("quickstart")
    assert "more than one replica without Redis" in notes("external", "replicaCount=3")
    assert "more than one replica without Redis" not in notes("ha")


def test_default_notes_describe_the_embedded_pod_and_how_to_move_to_servers() -> None:
    text = notes("defaults")
    assert "embedded default in one pod (StatefulSet soma-somamemory)" in text
    assert "PersistentVolumeClaim data-soma-somamemory-0" in text
    assert "all-MiniLM-L6-v2" in text and "deterministic hashes" not in text
    assert (
        "more than one replica (replicaCount > 1, autoscaling.enabled) needs a PostgreSQL" in text
    )
    for setting in (
        "externalPostgresql.existingSecret=",
        "externalMilvus.uri=",
        "externalRedis.host=",
    ):
        assert f"--set {setting}" in text, setting
    assert "Scale out" not in notes("ha")


def test_notes_only_suggest_the_servers_still_missing() -> None:
    text = notes("defaults", "externalPostgresql.url=postgresql://u:p@db:5432/soma")
    assert "--set externalMilvus.uri=" in text
    assert "--set externalPostgresql" not in text
    assert "PostgreSQL inside the pod" not in text and "milvus-lite inside the pod" in text


def test_notes_say_when_hash_embeddings_are_forced() -> None:
    assert "deterministic hashes" in notes("defaults", "config.forceHashEmbeddings=true")
