"""``somamemory token create | list | revoke``: manage API tokens through a running service.

The commands talk to the service's ``/admin/tokens`` with an admin token: ``--token``, else
``SOMA_API_TOKEN``, else the token ``somamemory serve`` keeps in its data directory.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from .admin_commands import add_service_options, admin_command, duration_seconds, print_json
from .client import SomaClient, TokenInfo


def _expiry(text: str) -> datetime:
    """``30d``, ``12h``, ``90m``, ``3600s`` from now, or an ISO 8601 time with a zone."""
    seconds = duration_seconds(text)
    if seconds is not None:
        return datetime.now(UTC) + timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a duration (30d, 12h, 90m) or an ISO time with a zone"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: add a time zone, e.g. {text}Z")
    return moment


def _json(info: TokenInfo) -> dict[str, Any]:
    data = asdict(info)
    data["namespaces"] = list(info.namespaces)
    for key in ("created_at", "expires_at"):
        data[key] = data[key].isoformat() if data[key] is not None else None
    return data


def _act(client: SomaClient, args: argparse.Namespace) -> None:
    if args.token_command == "create":
        minted = client.create_token(
            args.namespace, args.role, expires_at=args.expires, description=args.description
        )
        print_json({**_json(minted.info), "token": minted.token})
        print("the token is shown this once: keep it now", file=sys.stderr)
    elif args.token_command == "list":
        print_json([_json(info) for info in client.list_tokens()])
    else:
        client.revoke_token(args.id)
        print(f"revoked {args.id}")


def add_token_commands(commands: Any) -> None:
    """Register ``token`` and its subcommands on the CLI's subparsers."""
    token = commands.add_parser("token", help="create, list or revoke API tokens")
    add_service_options(token)
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
    token.set_defaults(run=admin_command("token", _act))
