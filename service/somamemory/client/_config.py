"""Where the client talks to, as whom, in which namespace: arguments first, then the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .. import __version__

DEFAULT_URL = "http://127.0.0.1:10101"
URL_VAR, TOKEN_VAR, NAMESPACE_VAR = "SOMA_URL", "SOMA_API_TOKEN", "SOMA_NAMESPACE"


@dataclass(frozen=True)
class Connection:
    """The resolved base URL, bearer token (None: send none) and namespace (None: the server's)."""

    base_url: str
    token: str | None
    namespace: str | None

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"somamemory-client/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.namespace:
            headers["X-Soma-Namespace"] = self.namespace
        return headers


def resolve(
    base_url: str | None,
    token: str | None,
    namespace: str | None,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """Each value from its argument, else ``SOMA_URL`` / ``SOMA_API_TOKEN`` / ``SOMA_NAMESPACE``."""
    env = os.environ if environ is None else environ
    return Connection(
        base_url=(base_url or env.get(URL_VAR) or DEFAULT_URL).rstrip("/"),
        token=token if token is not None else env.get(TOKEN_VAR) or None,
        namespace=namespace if namespace is not None else env.get(NAMESPACE_VAR) or None,
    )
