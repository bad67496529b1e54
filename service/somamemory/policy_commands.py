"""``somamemory policy set | get | clear``: a namespace's own default TTLs and memory cap,
through a running service's ``/admin/namespaces/{namespace}/policy``.

The admin token is found as for ``somamemory token``: ``--token``, else ``SOMA_API_TOKEN``,
else the token ``somamemory serve`` keeps in its data directory.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from .admin_commands import add_service_options, admin_command, duration_seconds, print_json
from .client import NamespacePolicy, SomaClient


def _seconds(text: str) -> int:
    """``7d``, ``12h``, ``90m``, ``3600s`` or a plain number of seconds."""
    if text.isdigit():
        return int(text)
    seconds = duration_seconds(text)
    if seconds is not None:
        return seconds
    raise argparse.ArgumentTypeError(f"{text!r}: give seconds or a duration (7d, 12h, 90m)")


def _json(policy: NamespacePolicy) -> dict[str, Any]:
    data = asdict(policy)
    data["default_ttl_seconds"] = dict(data["default_ttl_seconds"])
    if policy.updated_at is not None:
        data["updated_at"] = policy.updated_at.isoformat()
    return data


def _act(client: SomaClient, args: argparse.Namespace) -> None:
    if args.policy_command == "set":
        ttls = {
            kind: seconds
            for kind, seconds in (("episodic", args.episodic_ttl), ("semantic", args.semantic_ttl))
            if seconds is not None
        }
        policy = client.set_policy(
            args.namespace,
            default_ttl_seconds=ttls,
            max_memories=args.max_memories,
            clear=args.clear or (),
        )
        print_json(_json(policy))
    elif args.policy_command == "get":
        print_json(_json(client.get_policy(args.namespace)))
    else:
        had = client.clear_policy(args.namespace)
        print(f"cleared the policy of {args.namespace}" if had else "no policy to clear")


def add_policy_commands(commands: Any) -> None:
    """Register ``policy`` and its subcommands on the CLI's subparsers."""
    policy = commands.add_parser("policy", help="a namespace's default TTLs and memory cap")
    add_service_options(policy)
    actions = policy.add_subparsers(dest="policy_command", required=True)
    change = actions.add_parser("set", help="set (or --clear) values; keeps the others")
    change.add_argument("namespace")
    change.add_argument("--episodic-ttl", type=_seconds, help="default TTL, e.g. 7d or 3600")
    change.add_argument("--semantic-ttl", type=_seconds, help="default TTL, e.g. 90d")
    change.add_argument("--max-memories", type=int, help="at most this many live memories")
    change.add_argument(
        "--clear",
        action="append",
        choices=("episodic", "semantic", "max_memories"),
        help="clear one value: the setting applies again (repeat for more)",
    )
    show = actions.add_parser("get", help="the effective policy, each value with its source")
    show.add_argument("namespace")
    drop = actions.add_parser("clear", help="clear the whole policy: the settings apply again")
    drop.add_argument("namespace")
    policy.set_defaults(run=admin_command("policy", _act))
