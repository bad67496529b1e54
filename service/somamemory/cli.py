"""``somamemory serve | migrate | config | export | import | reindex | token``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from .errors import StartupError
from .local_token import TOKEN_FILE, local_token
from .logs import configure_logging
from .settings import Settings
from .token_commands import add_token_commands


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


class _Server(uvicorn.Server):
    """uvicorn's server, whose exit says whether every backend closed.

    After a graceful stop on a signal uvicorn re-raises the signal, so the process ends as if
    killed by it (the convention). When a backend failed to close (an embedded PostgreSQL may
    still run), the signal is not re-raised and ``serve`` exits 1 instead.
    """

    @property
    def shutdown_failed(self) -> bool:
        return bool(getattr(getattr(self, "lifespan", None), "shutdown_failed", False))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            if self.shutdown_failed:
                self._captured_signals.clear()


def serve(args: argparse.Namespace) -> int:
    from .app import create_app
    from .http_limits import HttpLimits, uvicorn_options

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    if settings.api_token is None and not settings.allow_unauthenticated:
        token = local_token(settings.data_dir)
        settings = settings.model_copy(update={"api_token": SecretStr(token)})
        print(
            f"SOMA_API_TOKEN not set: using the local token in {settings.data_dir / TOKEN_FILE}\n"
            f"  Authorization: Bearer {token}",
            file=sys.stderr,
            flush=True,
        )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        **uvicorn_options(
            HttpLimits(
                max_head_bytes=settings.http_max_head_bytes,
                head_timeout_seconds=settings.http_head_timeout_seconds,
                body_timeout_seconds=settings.http_body_timeout_seconds,
            ),
            keepalive_seconds=settings.http_keepalive_seconds,
            concurrency=settings.http_max_concurrency,
        ),
    )
    server = _Server(config)
    server.run()
    return 0 if server.started and not server.shutdown_failed else 1


def migrate(args: argparse.Namespace) -> int:
    from . import embedded, schema

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    if args.print_revisions:
        # what this image's schema is, without a database: the operator reads it before it
        # migrates, and refuses an image that does not know the database's revision
        revisions = "\n".join(schema.known_revisions())
        print(revisions)
        _report(settings, revisions)
        return 0
    if settings.postgres_configured:
        schema.upgrade_to_head(settings.postgres_url)
    else:
        already_running = embedded.is_running(settings.data_dir)
        server = embedded.start_embedded_postgres(settings.data_dir)
        try:
            schema.upgrade_to_head(asyncio.run(embedded.ensure_database(server.get_uri())))
        finally:
            if not already_running:  # leave alone a server that a running service uses
                server.stop()
    revision = schema.head_revision()
    print(f"schema at revision {revision}")
    _report(settings, revision)
    return 0


def _report(settings: Settings, text: str) -> None:
    """Leave ``text`` as the container's termination message, where there is one."""
    if settings.termination_log.parent.is_dir():
        # a migration Job's pod reports it to whoever watches (the operator)
        with contextlib.suppress(OSError):
            settings.termination_log.write_text(text + "\n")


def _transfer_failed(exc: Exception) -> int:
    print(f"somamemory: {exc}", file=sys.stderr)
    return 2


def export_cmd(args: argparse.Namespace) -> int:
    from .transfer import commands

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    count = asyncio.run(commands.export(settings, args.file, namespace=args.namespace))
    print(f"exported {count} memories", file=sys.stderr)
    return 0


def import_cmd(args: argparse.Namespace) -> int:
    from .transfer import commands
    from .transfer.fileformat import TransferFileError

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    try:
        read, changed = asyncio.run(
            commands.import_file(settings, args.file, index=not args.no_index)
        )
    except TransferFileError as exc:
        return _transfer_failed(exc)
    print(f"imported {read} memories ({changed} new or newer)", file=sys.stderr)
    return 0


def reindex_cmd(args: argparse.Namespace) -> int:
    from .transfer import commands

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    enqueued, owed = asyncio.run(
        commands.reindex(settings, namespace=args.namespace, index=not args.no_index)
    )
    print(
        f"reindexed {enqueued} memories; {owed} vectors still owed (the reconciler retries them)"
        if owed
        else f"reindexed {enqueued} memories",
        file=sys.stderr,
    )
    return 0


def show_config(args: argparse.Namespace) -> int:
    print(json.dumps(_settings(args).redacted(), indent=2, sort_keys=True))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="somamemory", description="SomaMemory memory service")
    commands = root.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the HTTP service")
    serve_cmd.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port to listen on (default 10101)")
    serve_cmd.set_defaults(run=serve)
    migrate_cmd = commands.add_parser("migrate", help="apply the Alembic migrations (upgrade head)")
    migrate_cmd.add_argument(
        "--print-revisions",
        action="store_true",
        help="print the schema revisions this version knows, oldest first (the last is the one "
        "it needs), also to the termination log; touches no database",
    )
    migrate_cmd.set_defaults(run=migrate)
    config_cmd = commands.add_parser("config", help="print the effective settings")
    config_cmd.set_defaults(run=show_config)
    export_parser = commands.add_parser(
        "export", help="write every memory with all its versions as JSON Lines"
    )
    export_parser.add_argument("file", help="the file to write, or - for stdout")
    export_parser.add_argument("--namespace", help="only this namespace (default: all)")
    export_parser.set_defaults(run=export_cmd)
    import_parser = commands.add_parser(
        "import", help="write the memories of an export file (idempotent, resumable)"
    )
    import_parser.add_argument("file", help="an export file, or - for stdin")
    reindex_parser = commands.add_parser("reindex", help="rebuild the vector store from PostgreSQL")
    reindex_parser.add_argument("--namespace", help="only this namespace (default: all)")
    for command in (import_parser, reindex_parser):
        command.add_argument(
            "--no-index",
            action="store_true",
            help="only enqueue the vectors in the outbox; a running service's reconciler writes "
            "them",
        )
    import_parser.set_defaults(run=import_cmd)
    reindex_parser.set_defaults(run=reindex_cmd)
    add_token_commands(commands)
    for command in (
        serve_cmd,
        migrate_cmd,
        config_cmd,
        export_parser,
        import_parser,
        reindex_parser,
    ):
        command.add_argument(
            "--data-dir", type=Path, help="local data directory (default ./.somamemory)"
        )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except StartupError as exc:
        print(f"somamemory: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
