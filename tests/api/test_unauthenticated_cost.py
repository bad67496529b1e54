"""An unauthenticated client costs the service little: no body read, bounded heads, timeouts.

Run against ``somamemory serve`` (real uvicorn) over raw sockets, as an attacker would.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..serve import Serve

LIMITS = {
    "SOMA_HTTP_MAX_HEAD_BYTES": "16384",
    "SOMA_HTTP_HEAD_TIMEOUT_SECONDS": "1",
    "SOMA_HTTP_BODY_TIMEOUT_SECONDS": "2",
    # judges the HTTP edge, not meaning
    "SOMA_FORCE_HASH_EMBEDDINGS": "1",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("edge") / "data", {**LIMITS, "SOMA_API_TOKEN": "sekrit"})
    server.wait_ready()
    yield server
    server.stop()


def _connect(server: Serve) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """One HTTP answer: its head, then as much body as its content-length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (bounded by the socket timeout)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_an_unauthenticated_upload_is_refused_before_its_body_is_sent(served: Serve) -> None:
    with _connect(served) as sock:
        sock.sendall(
            b"POST /memories HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
            b"content-length: 62000000\r\n\r\n"
        )
        answer = _answer(sock)  # the service answers without waiting for 62 MB
    assert answer.startswith(b"HTTP/1.1 401"), answer
    assert b"www-authenticate: Bearer" in answer
    assert b"missing bearer token" in answer


def test_a_wrong_token_is_refused_before_the_body_too(served: Serve) -> None:
    with _connect(served) as sock:
        sock.sendall(
            b"POST /memories/batch HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer nope\r\n"
            b"content-length: 50000000\r\n\r\n"
        )
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"invalid, expired or revoked bearer token" in answer


def test_the_right_token_still_stores(served: Serve) -> None:
    response = httpx.post(
        f"{served.url}/memories",
        json={"coord": "1", "payload": {"text": "allowed"}},
        headers={"Authorization": "Bearer sekrit"},
    )
    assert response.status_code == 200, response.text


def test_an_oversized_head_is_refused_with_431(served: Serve) -> None:
    answer = b""
    with _connect(served) as sock:
        try:
            # one write of a 200 KiB head, far beyond the 16 KiB limit
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-junk: " + b"a" * 204_800)
            answer = _read_all(sock)
        except ConnectionResetError:
            # the service closed with the rest of the head unread: the kernel may then reset
            # the connection before its 431 reaches us. Refused either way, never served.
            pass
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
    if answer:  # the same error shape as every other refusal
        problem = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert problem["status"] == 431 and problem["code"] == "headers_too_large"
    assert httpx.get(f"{served.url}/healthz").status_code == 200  # and it keeps serving


def test_a_whole_oversized_head_in_one_read_is_refused_too(served: Serve) -> None:
    """A complete head over the limit but within one socket read is not parsed and served."""
    head = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-junk: " + b"a" * 40_000 + b"\r\n\r\n"
    with _connect(served) as sock:
        sock.sendall(head)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    # a head within the limit on a kept-alive connection, then an oversized one: refused too
    small = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n"
    with _connect(served) as sock:
        sock.sendall(small)
        first = _answer(sock)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        sock.sendall(head)
        assert _read_all(sock).startswith(b"HTTP/1.1 431")


def test_a_client_that_sends_its_head_too_slowly_is_disconnected(served: Serve) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: local")  # ... and never the rest
        assert _read_all(sock) == b""  # closed by the service, with nothing answered


def test_a_connection_that_sends_nothing_is_disconnected(served: Serve) -> None:
    with _connect(served) as sock:
        assert _read_all(sock) == b""


def test_a_body_dribbled_too_slowly_is_cut_off(served: Serve) -> None:
    with _connect(served) as sock:
        sock.sendall(
            b"POST /memories HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer sekrit\r\n"
            b'content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"coord": '
        )
        assert _read_all(sock) == b""


def test_the_token_setting_is_stripped_of_whitespace(tmp_path: Path) -> None:
    server = Serve(tmp_path / "data", {"SOMA_API_TOKEN": "  padded\n", **LIMITS})
    try:
        server.wait_ready()
        ok = httpx.get(f"{server.url}/stats", headers={"Authorization": "Bearer padded"})
        assert ok.status_code == 200
    finally:
        server.stop()
