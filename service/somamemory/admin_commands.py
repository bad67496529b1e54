"""What the admin commands (``somamemory token``, ``somamemory policy``) share: the options that
reach a running service, the admin token, durations, the JSON answer and how a call's failure
is reported.

The admin token is ``--token``, else ``SOMA_API_TOKEN``, else the token ``somamemory serve``
keeps in its data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .client import APIError, ConnectionFailed, SomaClient
from .client._config import TOKEN_VAR
from .local_token import existing_local_token
from .settings import Settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int | None:
    """The seconds of ``30d``, ``12h``, ``90m`` or ``3600s``; None if ``text`` is not one."""
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return int(text[:-1]) * _UNITS[text[-1]]
    return None


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token`` and ``--data-dir``: the service, and the admin token for it."""
    parser.add_argument("--url", help="the service (default $SOMA_URL or http://127.0.0.1:10101)")
    parser.add_argument(
        "--token", help="an admin token (default $SOMA_API_TOKEN, else the local one)"
    )
    parser.add_argument("--data-dir", type=Path, help="where the local token is (./.somamemory)")


def admin_token(args: argparse.Namespace) -> str | None:
    """The token to send; None when the client finds it in ``SOMA_API_TOKEN`` itself."""
    if args.token:
        return str(args.token)
    if os.environ.get(TOKEN_VAR):
        return None  # the client reads it
    data_dir: Path = args.data_dir or Settings(**{}).data_dir
    return existing_local_token(data_dir)


def print_json(data: object) -> None:
    """A command's answer on stdout, as indented JSON."""
    print(json.dumps(data, indent=2))


def admin_command(
    name: str, act: Callable[[SomaClient, argparse.Namespace], None]
) -> Callable[[argparse.Namespace], int]:
    """The ``run`` of command ``name``: ``act`` with a client of the service; exit status 1,
    the failure on stderr, if the service refuses or cannot be reached."""

    def run(args: argparse.Namespace) -> int:
        try:
            with SomaClient(args.url, token=admin_token(args)) as client:
                act(client, args)
        except (APIError, ConnectionFailed) as exc:
            print(f"somamemory {name}: {exc}", file=sys.stderr)
            return 1
        return 0

    return run
