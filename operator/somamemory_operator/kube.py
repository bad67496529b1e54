"""A small synchronous Kubernetes REST client over plain dicts (urllib3 + kubernetes' config).

The generated ``kubernetes`` API classes deserialize into models and change shape between
releases; the operator only needs get/list/create/patch/delete of JSON objects.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, urlencode

import kubernetes
import urllib3

logger = logging.getLogger(__name__)

# kind -> (API prefix, plural). Every kind the operator touches.
KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "Pod": ("/api/v1", "pods"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Event": ("/api/v1", "events"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "SomaMemory": ("/apis/soma.dev/v1alpha1", "somamemories"),
    "SomaMemoryBackup": ("/apis/soma.dev/v1alpha1", "somamemorybackups"),
    "SomaMemoryScheduledBackup": ("/apis/soma.dev/v1alpha1", "somamemoryscheduledbackups"),
    "SomaMemoryRestore": ("/apis/soma.dev/v1alpha1", "somamemoryrestores"),
    "SomaMemoryReindex": ("/apis/soma.dev/v1alpha1", "somamemoryreindexes"),
    # the Prometheus Operator's, used only when its CRDs are served (see monitoring.py)
    "ServiceMonitor": ("/apis/monitoring.coreos.com/v1", "servicemonitors"),
    "PrometheusRule": ("/apis/monitoring.coreos.com/v1", "prometheusrules"),
}


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def load_configuration(config_file: str | None = None) -> kubernetes.client.Configuration:
    """In-cluster service account if there is one, else the kubeconfig file."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(
            config_file=config_file, client_configuration=configuration
        )
    return configuration


def bearer_token(configuration: kubernetes.client.Configuration) -> str | None:
    """The ``Authorization`` header value (the client moved it to ``BearerToken`` in v36)."""
    return configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")


class Kube:
    """JSON in, JSON out: the handful of verbs the reconciler uses."""

    def __init__(self, configuration: kubernetes.client.Configuration, timeout: float = 15) -> None:
        self._cfg = configuration
        self._timeout = timeout
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=8,
            cert_reqs="CERT_REQUIRED" if configuration.verify_ssl else "CERT_NONE",
            ca_certs=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
        )

    def _url(self, kind: str, namespace: str | None, name: str | None, sub: str | None) -> str:
        prefix, plural = KINDS[kind]
        path = prefix
        if namespace:
            path += f"/namespaces/{quote(namespace)}"
        path += f"/{plural}"
        if name:
            path += f"/{quote(name)}"
        if sub:
            path += f"/{sub}"
        return self._cfg.host.rstrip("/") + path

    def _request(self, method: str, url: str, body: Any = None, ctype: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        token = bearer_token(self._cfg)
        if token:
            headers["Authorization"] = token
        data = None
        if body is not None:
            headers["Content-Type"] = ctype or "application/json"
            data = json.dumps(body).encode()
        response = self._pool.request(
            method, url, body=data, headers=headers, timeout=self._timeout, retries=False
        )
        if response.status >= 300:
            raise ApiError(response.status, response.data.decode(errors="replace")[:500])
        return json.loads(response.data) if response.data else None

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._request("GET", self._url(kind, namespace, name, None))  # type: ignore
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def served(self, group_version: str) -> set[str]:
        """The resources (plurals) the API server serves in ``group_version``; empty when the
        group is not installed. Discovery, asked anew each time: CRDs come and go."""
        try:
            answer = self._request("GET", f"{self._cfg.host.rstrip('/')}/apis/{group_version}")
        except ApiError as exc:
            if exc.status == 404:
                return set()
            raise
        return {str(item.get("name", "")) for item in (answer or {}).get("resources") or []}

    def list(self, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Objects matching ``labels`` (filtered here too: not every server honours selectors)."""
        query = urlencode({"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())})
        answer = self._request("GET", f"{self._url(kind, namespace, None, None)}?{query}")
        items = answer.get("items") or []
        return [
            item
            for item in items
            if labels.items() <= (item.get("metadata", {}).get("labels") or {}).items()
        ]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object described by ``body``."""
        ns = body["metadata"].get("namespace")
        return self._request("POST", self._url(body["kind"], ns, None, None), body)  # type: ignore

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch (lists are replaced whole, which is what drift repair wants)."""
        url = self._url(kind, namespace, name, subresource)
        return self._request("PATCH", url, patch, "application/merge-patch+json")  # type: ignore

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete with background propagation; False if it was already gone."""
        url = self._url(kind, namespace, name, None) + "?propagationPolicy=Background"
        try:
            self._request("DELETE", url)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True
