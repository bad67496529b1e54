"""The one shape of every error answer, whichever layer refuses the request.

``{"status": 404, "title": "Not Found", "code": "not_found", "detail": "..."}``: the members of
RFC 9457 problem details (served as ``application/json``), a stable machine-readable ``code``, and
a ``detail`` a person can act on. Some answers add members: ``errors`` (a 422's field errors),
``results`` (a rejected batch's items). The HTTP layer, the auth gate, the admission queue and the
connection limits all build their bodies here.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

# a stable code per status, for clients that branch on the kind of failure
CODES: dict[int, str] = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    421: "misdirected_request",
    422: "invalid_request",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}


def problem(status: int, detail: str, *, code: str | None = None, **extra: Any) -> dict[str, Any]:
    """The error body for ``status``: ``detail`` says what went wrong and what to do."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "status": status,
        "title": title,
        "code": code or CODES.get(status, "error"),
        "detail": detail,
    }
    body.update(extra)
    return body


def problem_bytes(status: int, detail: str, *, code: str | None = None, **extra: Any) -> bytes:
    """:func:`problem` encoded: ASCII escapes, so whatever a client sent can be echoed."""
    body = problem(status, detail, code=code, **extra)
    return json.dumps(body, ensure_ascii=True, allow_nan=False).encode()
