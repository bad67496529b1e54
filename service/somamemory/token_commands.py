"""``somamemory token create | list | revoke``: manage API tokens through a running service.

The commands talk to the service's ``/admin/tokens`` with an admin token: ``--token``, else
``SOMA_API_TOKEN``, else the token ``somamemory serve`` keeps in its data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .client import APIError, ConnectionFailed, SomaClient, TokenInfo
from .client._config import TOKEN_VAR
from .local_token import existing_local_token
from .settings import Settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _expiry(text: str) -> datetime:
    """``30d``, ``12h``, ``90m``, ``3600s`` from now, or an ISO 8601 time with a zone."""
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return datetime.now(UTC) + timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a duration (30d, 12h, 90m) or an ISO time with a zone"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: add a time zone, e.g. {text}Z")
    return moment


def _admin_token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    if os.environ.get(TOKEN_VAR):
        return None  # the client reads it
    data_dir: Path = args.data_dir or Settings(**{}).data_dir
    return existing_local_token(data_dir)


def _json(info: TokenInfo) -> dict[str, Any]:
    data = asdict(info)
    data["namespaces"] = list(info.namespaces)
    for key in ("created_at", "expires_at"):
        data[key] = data[key].isoformat() if data[key] is not None else None
    return data


def _run(args: argparse.Namespace) -> int:
    try:
        with SomaClient(args.url, token=_admin_token(args)) as client:
            if args.token_command == "create":
                minted = client.create_token(
                    args.namespace, args.role, expires_at=args.expires, description=args.description
                )
                print(json.dumps({**_json(minted.info), "token": minted.token}, indent=2))
                print("the token is shown this once: keep it now", file=sys.stderr)
            elif args.token_command == "list":
                print(json.dumps([_json(info) for info in client.list_tokens()], indent=2))
            else:
                client.revoke_token(args.id)
                print(f"revoked {args.id}")
    except (APIError, ConnectionFailed) as exc:
        print(f"somamemory token: {exc}", file=sys.stderr)
        return 1
    return 0


def add_token_commands(commands: Any) -> None:
    """Register ``token`` and its subcommands on the CLI's subparsers."""
    token = commands.add_parser("token", help="create, list or revoke API tokens")
    token.add_argument("--url", help="the service (default $SOMA_URL or http://127.0.0.1:10101)")
    token.add_argument(
        "--token", help="an admin token (default $SOMA_API_TOKEN, else the local one)"
    )
    token.add_argument("--data-dir", type=Path, help="where the local token is (./.somamemory)")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="mint a token; prints its secret once")
    create.add_argument(
        "--namespace",
        action="append",
        required=True,
        help="a namespace it may use (repeat for more; '*' for all)",
    )
    create.add_argument("--role", choices=("read", "write", "admin"), required=True)
    create.add_argument("--expires", type=_expiry, help="30d, 12h, 90m, or an ISO time")
    create.add_argument("--description", help="a note for whoever lists tokens later")
    actions.add_parser("list", help="the tokens not revoked (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", help="the token's id (tok_...)")
    token.set_defaults(run=_run)
