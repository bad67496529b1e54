"""``somamemory serve | migrate | config | export | import | reindex | token | policy``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from .errors import StartupError
from .local_token import TOKEN_FILE, local_token
from .logs import configure_logging
from .policy_commands import add_policy_commands
from .settings import Settings
from .token_commands import add_token_commands


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "workers"):
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


def _http_options(settings: Settings) -> dict[str, Any]:
    from .http_limits import HttpLimits, uvicorn_options

    limits = HttpLimits(
        max_head_bytes=settings.http_max_head_bytes,
        head_timeout_seconds=settings.http_head_timeout_seconds,
        body_timeout_seconds=settings.http_body_timeout_seconds,
    )
    options: dict[str, Any] = uvicorn_options(
        limits,
        keepalive_seconds=settings.http_keepalive_seconds,
        concurrency=settings.http_max_concurrency,
    )
    return options


def worker_app(settings: Settings) -> Any:
    """The app of one worker process: uvicorn calls this in each worker it starts."""
    from .app import create_app

    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


class _Config(uvicorn.Config):
    """uvicorn's configuration for these settings.

    With several workers uvicorn sends it, pickled, to each worker process, which builds its own
    app from the settings (``worker_app``) and its own bounded HTTP protocol in ``load``: a
    class made at run time does not pickle.
    """

    def __init__(self, settings: Settings, app: Any = None) -> None:
        """``app`` to serve in this process; without it each worker builds its own."""
        self.settings = settings
        options = _http_options(settings)
        options["http"] = "httptools"  # the bounded protocol replaces it in load()
        super().__init__(
            app if app is not None else functools.partial(worker_app, settings),
            factory=app is None,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level.lower(),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
            # how long a worker may take to answer the supervisor's ping, and a replacement (on
            # SIGHUP) to start: uvicorn's 5 s kill workers still importing on a busy machine
            timeout_worker_healthcheck=60,
            **options,
        )

    def load(self) -> None:
        self.http = _http_options(self.settings)["http"]
        super().load()


def _require_shared_backends(settings: Settings) -> None:
    """Refuse several workers on the embedded default: its PostgreSQL server and milvus-lite
    file belong to one process."""
    missing = []
    if not settings.postgres_configured:
        missing.append("POSTGRES_URL (an external PostgreSQL)")
    if "://" not in settings.effective_milvus_uri:
        missing.append("SOMA_MILVUS_URI=http://host:port (a Milvus server)")
    if missing:
        raise StartupError(
            f"--workers {settings.workers} (SOMA_WORKERS) needs backends that several processes "
            "can share; the embedded PostgreSQL and milvus-lite belong to one process. Set "
            + " and ".join(missing)
            + ", or run one worker"
        )


def serve(args: argparse.Namespace) -> int:
    from .stores.milvus_lite_memory import prefer_returning_pool

    prefer_returning_pool()  # before anything imports pyarrow
    from .app import create_app

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    if settings.workers > 1:
        _require_shared_backends(settings)
    if settings.api_token is None and not settings.allow_unauthenticated:
        token = local_token(settings.data_dir)
        settings = settings.model_copy(update={"api_token": SecretStr(token)})
        print(
            f"SOMA_API_TOKEN not set: using the local token in {settings.data_dir / TOKEN_FILE}\n"
            f"  Authorization: Bearer {token}",
            file=sys.stderr,
            flush=True,
        )
    app = create_app(settings)  # settings it refuses are refused here, before any worker starts
    if settings.workers > 1:
        return _serve_workers(_Config(settings))
    server = _Server(_Config(settings, app))
    server.run()
    return 0 if server.started and not server.shutdown_failed else 1


def _serve_workers(config: _Config) -> int:
    """Run ``config.workers`` processes on one listening socket (uvicorn's supervisor, which
    restarts a worker that dies); 1 when a worker failed to start."""
    from .worker_supervisor import supervisor

    workers = supervisor(config, sockets=[config.bind_socket()])
    workers.run()
    clean = (0, -signal.SIGTERM, -signal.SIGINT)  # a graceful stop re-raises the signal
    return 0 if all(p.exitcode in clean for p in workers.processes) else 1


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
    count = asyncio.run(
        commands.export(
            settings, args.file, namespace=args.namespace, include_deleted=args.include_deleted
        )
    )
    print(f"exported {count} memories", file=sys.stderr)
    return 0


def import_cmd(args: argparse.Namespace) -> int:
    from .interchange.fileformat import TransferFileError
    from .transfer import commands

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_json)
    try:
        read, changed, links = asyncio.run(
            commands.import_file(settings, args.file, index=not args.no_index)
        )
    except TransferFileError as exc:
        return _transfer_failed(exc)
    print(f"imported {read} memories ({changed} new or newer), {links} new links", file=sys.stderr)
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
    serve_cmd.add_argument(
        "--workers",
        type=int,
        help="worker processes on that port (default 1; SOMA_WORKERS); more than one needs "
        "POSTGRES_URL and a Milvus server (SOMA_MILVUS_URI=http://...)",
    )
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
    export_parser.add_argument(
        "--include-deleted",
        action="store_true",
        help="also deleted memories whose history is still kept (time travel retention)",
    )
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
    add_policy_commands(commands)
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
