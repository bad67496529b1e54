"""An embedder that calls any OpenAI-compatible ``/v1/embeddings`` endpoint over HTTP.

Texts go out in batches of ``batch_size``; each batch is retried with exponential backoff and
jitter on timeouts, connection errors, 429 and 5xx (honouring a capped ``Retry-After``), never on
other 4xx. A final failure or a malformed answer raises ``EmbeddingUnavailable`` (HTTP 503) with a
message that says what to fix. Vectors come back L2-normalised, in input order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import numpy as np

from ..errors import EmbeddingUnavailable
from .base import EmbedderInfo

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 429})
_BODY_SNIPPET = 200


def endpoint_url(url: str) -> str:
    """The full ``.../embeddings`` URL from a base (``http://h:p/v1``) or a full endpoint URL."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"SOMA_EMBEDDINGS_URL must be an http(s) URL, got {url!r}")
    path = parsed.path.rstrip("/")
    if path.endswith("/embeddings"):
        return str(parsed.copy_with(path=path))
    return str(parsed.copy_with(path=f"{path or '/v1'}/embeddings"))


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), if valid."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Retryable(Exception):
    """One attempt failed in a way worth another try."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class OpenAIEmbedder:
    """``POST {"model", "input": [...]}`` to an OpenAI-compatible endpoint, one client reused."""

    name = "openai"

    def __init__(
        self,
        url: str,
        *,
        model: str,
        dim: int,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        batch_size: int = 64,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if batch_size < 1 or max_retries < 0:
            raise ValueError("batch_size must be >= 1 and max_retries >= 0")
        self.url = endpoint_url(url)
        self.model = model
        self.dim = dim
        self.timeout = timeout
        self.max_retries = max_retries
        self.batch_size = batch_size
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._sleep = sleep  # injectable: tests record the waits instead of sleeping
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers)

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo(kind="openai", model=self.model, dim=self.dim)

    async def aclose(self) -> None:
        """Close the HTTP client and its pooled connections."""
        await self._client.aclose()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._embed_batch(list(texts[start : start + self.batch_size])))
        return vectors

    async def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        attempt = 0
        while True:
            try:
                return await self._attempt(batch)
            except _Retryable as failure:
                if attempt >= self.max_retries:
                    raise EmbeddingUnavailable(
                        f"embedding endpoint {self.url} failed after {attempt + 1} attempt(s): "
                        f"{failure.reason}"
                    ) from failure
                delay = self._delay(attempt, failure.retry_after)
                log.warning(
                    "embedding request failed, retrying",
                    extra={"url": self.url, "reason": failure.reason, "delay_s": round(delay, 3)},
                )
                await self._sleep(delay)
                attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_seconds)
        ceiling = min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter"

    async def _attempt(self, batch: list[str]) -> list[list[float]]:
        try:
            response = await self._client.post(self.url, json={"model": self.model, "input": batch})
        except httpx.TimeoutException as exc:
            raise _Retryable(f"no answer within {self.timeout}s ({type(exc).__name__})") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Retryable(f"cannot reach it ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise EmbeddingUnavailable(f"request to {self.url} failed: {exc}") from exc
        status = response.status_code
        if status in _RETRY_STATUSES or status >= 500:
            raise _Retryable(
                f"HTTP {status}: {_snippet(response)}",
                retry_after_seconds(response.headers.get("retry-after")),
            )
        if status >= 400:
            hint = " (check SOMA_EMBEDDINGS_API_KEY)" if status in (401, 403) else ""
            raise EmbeddingUnavailable(
                f"embedding endpoint {self.url} rejected the request with HTTP {status}{hint}: "
                f"{_snippet(response)}"
            )
        return self._vectors(response, len(batch))

    def _vectors(self, response: httpx.Response, count: int) -> list[list[float]]:
        try:
            data = response.json()["data"]
            items = sorted(data, key=lambda item: int(item["index"]))
            rows = [item["embedding"] for item in items]
            indices = [int(item["index"]) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingUnavailable(
                f"embedding endpoint {self.url} returned a body that is not an embeddings list "
                f"({type(exc).__name__}): {_snippet(response)}"
            ) from exc
        if len(rows) != count:
            raise EmbeddingUnavailable(
                f"embedding endpoint {self.url} returned {len(rows)} vectors for {count} texts"
            )
        if indices != list(range(count)):
            raise EmbeddingUnavailable(
                f"embedding endpoint {self.url} returned indices {indices}, not 0..{count - 1}"
            )
        return _normalised(rows, self.dim, self.url)


def _normalised(rows: list[Any], dim: int, url: str) -> list[list[float]]:
    if not all(isinstance(row, list) for row in rows):
        raise EmbeddingUnavailable(
            f"embedding endpoint {url} returned embeddings that are not lists of floats "
            "(does it ignore the default encoding_format=float?)"
        )
    lengths = sorted({len(row) for row in rows})
    if lengths and lengths != [dim]:
        got = "/".join(str(n) for n in lengths)
        raise EmbeddingUnavailable(
            f"embedding endpoint {url} returned {got}-dim vectors; SOMA_EMBEDDING_DIM is {dim} "
            f"(set it to the model's dimension, or choose a model that makes {dim}-dim vectors)"
        )
    try:
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), dim)
    except (TypeError, ValueError) as exc:
        reason = f"embedding endpoint {url} returned non-numeric vectors"
        raise EmbeddingUnavailable(reason) from exc
    if not np.isfinite(matrix).all():
        raise EmbeddingUnavailable(f"embedding endpoint {url} returned NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    zero = norms[:, 0] == 0.0
    matrix[zero, 0] = 1.0  # a zero vector has no direction: a fixed unit vector, as HashEmbedder
    norms[zero] = 1.0
    return (matrix / norms).astype(np.float32).tolist()


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:_BODY_SNIPPET] + ("..." if len(text) > _BODY_SNIPPET else "") or "(empty body)"
