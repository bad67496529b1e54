"""A real OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1, scripted by the tests.

It runs ``http.server`` in a thread, records every request, answers with deterministic vectors in
*reversed* index order (so clients must sort by ``index``), and can be told to fail the next
requests with a status, headers, a delay or a wrong dimension.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vector_for(text: str, dim: int) -> list[float]:
    """A deterministic, non-normalised vector for ``text`` (what the fake endpoint returns)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [float(digest[i % len(digest)] - 128) + 0.5 for i in range(dim)]


@dataclass
class Reply:
    """One scripted answer: a status with a JSON body, or a normal answer of ``dim`` vectors."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    dim: int | None = None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


class FakeEmbeddingEndpoint:
    """Serves until ``stop()``; ``script`` holds replies for the next requests, then 200s."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.script: list[Reply] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def start(self) -> FakeEmbeddingEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are sleeping to simulate a slow server
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def then(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self.script.extend(replies)

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else Reply()

    def _answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        reply = self._next(request)
        if reply.delay:
            self._stopping.wait(reply.delay)
        if reply.status != 200 or reply.body is not None:
            body = reply.body if reply.body is not None else {"error": {"message": "scripted"}}
            return reply.status, reply.headers, json.dumps(body).encode()
        texts = request.body["input"]
        dim = reply.dim or self.dim
        data = [
            {"object": "embedding", "index": i, "embedding": vector_for(text, dim)}
            for i, text in enumerate(texts)
        ]
        body = {"object": "list", "data": data[::-1], "model": request.body["model"]}
        return 200, reply.headers, json.dumps(body).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                request = Request(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(self.rfile.read(length) or b"null"),
                )
                status, headers, body = endpoint._answer(request)
                try:
                    self.send_response(status)
                    for name, value in {"content-type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
