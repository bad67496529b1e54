"""Ingress, HPA, PDB, NetworkPolicy, Secrets and the quick-trial backends appear when asked."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from tests.chart.helm import Manifest, api_workload, find, one, pod_spec


def decoded(secret: Manifest) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


@pytest.mark.parametrize("scenario", ["defaults", "external"])
def test_defaults_make_no_optional_objects(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    docs = render(scenario)
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert [d["metadata"]["name"] for d in find(docs, "StatefulSet")] == (
        ["soma-somamemory"] if scenario == "defaults" else []
    )
    assert api_workload(docs)["spec"]["replicas"] == 1


def test_a_token_is_generated_when_none_is_given(render: Callable[..., list[Manifest]]) -> None:
    secret = decoded(one(render("defaults"), "Secret", "soma-somamemory"))
    assert len(secret["api-token"]) == 32


def test_a_given_token_is_used(render: Callable[..., list[Manifest]]) -> None:
    secret = decoded(one(render("ingress"), "Secret", "soma-somamemory"))
    assert secret["api-token"] == "a-fixed-token-for-tests"


def test_existing_secrets_are_referenced_and_none_is_made(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("existing-secrets")
    assert not find(docs, "Secret")
    env = {e["name"]: e for e in pod_spec(one(docs, "Deployment"))["containers"][0]["env"]}
    refs = {name: e["valueFrom"]["secretKeyRef"] for name, e in env.items() if "valueFrom" in e}
    assert refs == {
        "SOMA_API_TOKEN": {"name": "somamemory-auth", "key": "token"},
        "POSTGRES_URL": {"name": "somamemory-db", "key": "url"},
        "SOMA_REDIS_PASSWORD": {"name": "somamemory-redis", "key": "password"},
        "SOMA_MILVUS_TOKEN": {"name": "somamemory-milvus", "key": "token"},
    }
    data = one(docs, "ConfigMap", "soma-somamemory")["data"]
    assert (data["REDIS_HOST"], data["REDIS_PORT"], data["SOMA_REDIS_DB"]) == (
        "redis-master.redis.svc",
        "6379",
        "2",
    )


def test_ha_scales_with_an_hpa_and_keeps_a_pdb(render: Callable[..., list[Manifest]]) -> None:
    docs = render("ha")
    deployment = one(docs, "Deployment")
    assert "replicas" not in deployment["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    (spread,) = pod_spec(deployment)["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"] == selector


def test_ha_network_policy_limits_ingress_and_egress(
    render: Callable[..., list[Manifest]],
) -> None:
    policy = one(render("ha"), "NetworkPolicy")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 10101, "protocol": "TCP"}]
    assert len(rule["from"]) == 2
    ports = {p["port"] for r in policy["spec"]["egress"] for p in r["ports"]}
    assert ports == {53, 5432, 6379, 19530}


def test_ingress_routes_to_the_service(render: Callable[..., list[Manifest]]) -> None:
    ingress = one(render("ingress"), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "memory.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "soma-somamemory", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["secretName"] == "somamemory-tls"


def test_quickstart_runs_postgres_redis_and_milvus_in_the_release(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("quickstart")
    names = {s["metadata"]["name"] for s in find(docs, "StatefulSet")}
    assert names == {f"soma-somamemory-{b}" for b in ("postgresql", "redis", "milvus")}
    data = one(docs, "ConfigMap", "soma-somamemory")["data"]
    assert data["REDIS_HOST"] == "soma-somamemory-redis"
    assert data["SOMA_MILVUS_URI"] == "http://soma-somamemory-milvus:19530"
    secret = decoded(one(docs, "Secret", "soma-somamemory"))
    assert secret["postgres-url"] == (
        f"postgresql://somamemory:{secret['postgres-password']}"
        "@soma-somamemory-postgresql:5432/somamemory"
    )
    assert secret["redis-password"]


def test_helm_test_pod_calls_readyz_through_the_service(
    render: Callable[..., list[Manifest]],
) -> None:
    pod = one(render("defaults"), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = " ".join(pod_spec(pod)["containers"][0]["command"])
    assert "http://soma-somamemory:10101/readyz" in command
