"""The ``pocketmesh`` command line: ``pocketmesh serve MODULE:ATTR``, ``pocketmesh runs`` and friends."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .node import BaseNode


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pocketmesh`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(prog="pocketmesh", description="Run PocketMesh agent flows.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_serve_command(commands)
    add_runs_command(commands)
    add_plugin_commands(commands)
    return parser


def add_plugin_commands(commands: Any) -> None:
    """Register commands other packages declare under the ``pocketmesh.commands`` entry point
    group (``demo`` and ``gate`` come from pocketmesh_testing this way)."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group="pocketmesh.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as error:
            print(f"pocketmesh: command {entry.name!r} is unavailable: {error}", file=sys.stderr)
            continue
        register(commands)


def add_serve_command(commands: Any) -> None:
    """Register ``serve``."""
    serve = commands.add_parser(
        "serve",
        help="serve flows over A2A (JSON-RPC at /a2a, HTTP+JSON at /a2a/rest, gRPC with --grpc-port; "
        "card at /.well-known/agent-card.json)",
        description="Serve a dict of flows (one skill per flow) or an ASGI app with uvicorn.",
    )
    serve.add_argument("target", metavar="MODULE:ATTR", help="e.g. pocketmesh.examples.greeting:flows")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4000, help="port to bind (default: 4000)")
    serve.add_argument(
        "--db", metavar="PATH|URL",
        help="where runs and tasks live: a SQLite file (default: $POCKETMESH_DB_PATH or ./pocketmesh.sqlite), "
        "or a postgresql://... or redis://... URL, which replicas of this server may share",
    )
    serve.add_argument(
        "--persistence", choices=BACKENDS, default=None,
        help="the store --db names (default: guessed from --db; postgres and redis without --db read "
        "$POCKETMESH_POSTGRES_DSN / $POCKETMESH_REDIS_URL)",
    )
    serve.add_argument(
        "--auth-token", metavar="TOKEN[=OWNER]", action="append", default=[],
        help="require 'Authorization: Bearer TOKEN' (repeatable); tasks are scoped to OWNER "
        "(default: 'default'). Prefer $POCKETMESH_AUTH_TOKENS (comma-separated) to keep tokens out of ps",
    )
    serve.add_argument(
        "--max-body-size", metavar="BYTES", type=_positive_int, default=None,
        help="largest JSON-RPC request body accepted (default: 1048576)",
    )
    serve.add_argument(
        "--max-concurrent-turns", metavar="N", type=_count, default=None,
        help="turns run at once by this server, the rest wait (default: 16 on PostgreSQL, else no limit; 0: no limit)",
    )
    serve.add_argument("--name", help="agent name on the card (default: the module name)")
    serve.add_argument(
        "--grpc-port", metavar="PORT", type=_port, default=None,
        help="also serve gRPC on this port, same host (needs grpcio: pip install 'pocketmesh[grpc]')",
    )
    serve.add_argument(
        "--push-allow-host", metavar="HOST", action="append", default=[],
        help="let push notifications go to HOST (a name, an address or a network such as 10.1.0.0/16), "
        "though it is loopback or private (repeatable)",
    )
    serve.add_argument(
        "--allow-private-push-targets", action="store_true",
        help="let push notifications go to any loopback, private or link-local address",
    )
    serve.add_argument(
        "--extended-card", metavar="MODULE:ATTR",
        help="the extended agent card for authenticated callers: an AgentCard, its A2A JSON as a dict, "
        "or a function of the public card returning one",
    )
    serve.add_argument(
        "--expose-errors", action="store_true",
        help="send a failed task's exception text to the client (for development; by default clients "
        "get a generic message with an error id, and the log has the traceback under that id)",
    )
    serve.set_defaults(handler=serve_command)


def add_runs_command(commands: Any) -> None:
    """Register ``runs`` (list runs) and ``runs show RUN_ID`` (one run in full)."""
    runs = commands.add_parser(
        "runs", help="list the runs in a store, or show one run's trace and state",
        description="List the runs kept in a store (id, flow, status, steps, last update), oldest first.",
    )
    shown = argparse.ArgumentParser(add_help=False)
    for parser, default in ((runs, None), (shown, argparse.SUPPRESS)):
        parser.add_argument(
            "--db", metavar="PATH|URL", default=default,
            help="the store: a SQLite file (default: $POCKETMESH_DB_PATH or ./pocketmesh.sqlite), "
            "or a postgresql://... or redis://... URL",
        )
        parser.add_argument(
            "--prefix", default=default,
            help="the table prefix (PostgreSQL) or key prefix (Redis) the runs were saved under",
        )
        parser.add_argument(
            "--backend", metavar="MODULE:ATTR", default=default,
            help="your own backend instead of --db: a persistence object, or a class or function making one",
        )
    runs.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    runs.set_defaults(handler=runs_command, run_id=None)
    show = runs.add_subparsers(title="commands", metavar="COMMAND").add_parser(
        "show", parents=[shown], help="print one run: status, trace with step durations, shared state as JSON",
    )
    show.add_argument("run_id", metavar="RUN_ID")


RUN_STATUSES = ("running", "input-required", "completed", "failed", "canceled")


BACKENDS = ("sqlite", "postgres", "redis")
AUTH_TOKENS_ENV = "POCKETMESH_AUTH_TOKENS"
_URL_SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "redis": "redis", "rediss": "redis", "unix": "redis"}


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes >= 1, got {text!r}; e.g. 4194304 for 4 MiB")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port number (1-65535), got {text!r}; e.g. 50051")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}; e.g. 16 (0: no limit)")
    return int(text)


def backend_of(db: str | None, persistence: str | None) -> str:
    """Which store ``--db`` / ``--persistence`` name: ``sqlite``, ``postgres`` or ``redis``."""
    scheme = db.partition("://")[0].lower() if db and "://" in db else None
    guessed = _URL_SCHEMES.get(scheme or "")
    if scheme is not None and guessed is None:
        raise ValueError(
            f"--db {scheme}://... is not a store this server knows; give a SQLite file path, "
            f"a postgresql://user:password@host/db URL or a redis://host:6379/0 URL."
        )
    if persistence is None:
        return guessed or "sqlite"
    if db is not None and (guessed or "sqlite") != persistence:
        raise ValueError(
            f"--persistence {persistence} does not match --db {_redacted(db)!r} (a {guessed or 'sqlite'} store); "
            f"drop one of them or make them agree."
        )
    return persistence


def _redacted(db: str) -> str:
    from .persistence.postgres import redact

    return redact(db)


def open_persistence(db: str | None, persistence: str | None) -> Any:
    """The persistence backend ``--db`` / ``--persistence`` ask for."""
    backend = backend_of(db, persistence)
    if backend == "postgres":
        from .persistence import PostgresPersistence

        return PostgresPersistence(db)
    if backend == "redis":
        from .persistence import RedisPersistence

        return RedisPersistence(db)
    from .persistence import SQLitePersistence

    return SQLitePersistence(db)


def parse_auth_tokens(values: Sequence[str]) -> dict[str, str]:
    """``TOKEN[=OWNER]`` values (and ``$POCKETMESH_AUTH_TOKENS``) as ``{token: owner}``."""
    tokens: dict[str, str] = {}
    listed = [v for v in os.environ.get(AUTH_TOKENS_ENV, "").split(",") if v.strip()]
    for value in [*listed, *values]:
        token, sep, owner = value.strip().partition("=")
        if not token or (sep and not owner):
            raise ValueError(
                f"--auth-token expects TOKEN or TOKEN=OWNER with both parts non-empty, got {value[:4]!r}...; "
                f"e.g. --auth-token s3cret=alice."
            )
        tokens[token] = owner or "default"
    return tokens


def serve_command(args: argparse.Namespace) -> int:
    """Load ``MODULE:ATTR`` and serve it until interrupted."""
    import uvicorn

    try:
        backend = backend_of(args.db, args.persistence)
        tokens = parse_auth_tokens(args.auth_token)
        if args.db and backend == "sqlite":
            # Set before loading the target, so an app built at import time uses it too.
            os.environ["POCKETMESH_DB_PATH"] = args.db
        target = load_target(args.target)
        app = build_app(
            target,
            args.target,
            host=args.host,
            port=args.port,
            name=args.name,
            db=args.db,
            persistence=args.persistence,
            auth_tokens=tokens,
            max_body_size=args.max_body_size,
            max_concurrent_turns=args.max_concurrent_turns,
            **serve_options(args),
            expose_errors=args.expose_errors,
        )
    except (ImportError, AttributeError, ValueError, TypeError) as error:
        print(f"pocketmesh serve: {error}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``create_a2a_app`` options the transport, push and extended card flags ask for."""
    options: dict[str, Any] = {}
    if args.grpc_port is not None:
        options["grpc_port"] = args.grpc_port
        options["grpc_host"] = args.host
    if args.push_allow_host:
        options["push_allowed_hosts"] = list(args.push_allow_host)
    if args.allow_private_push_targets:
        options["allow_private_push_targets"] = True
    if args.extended_card:
        options["extended_agent_card"] = load_card(args.extended_card)
    return options


def load_card(spec: str) -> Any:
    """``MODULE:ATTR`` naming an AgentCard, its A2A JSON as a dict, or a function of the public card."""
    from a2a.types import AgentCard
    from google.protobuf.json_format import ParseDict, ParseError

    value = load_target(spec)
    if isinstance(value, AgentCard) or callable(value):
        return value
    if isinstance(value, Mapping):
        try:
            return ParseDict(dict(value), AgentCard(), ignore_unknown_fields=True)
        except ParseError as error:
            raise ValueError(f"--extended-card {spec}: not an A2A agent card ({error}).") from None
    raise ValueError(
        f"--extended-card {spec} is a {type(value).__name__}; point it at an AgentCard, a dict of the card's "
        f"A2A JSON, or a function taking the public card and returning the extended one."
    )


def load_target(spec: str) -> Any:
    """Import ``MODULE:ATTR`` and return the attribute."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected MODULE:ATTR, got {spec!r}; e.g. pocketmesh.examples.greeting:flows")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    value: Any = module
    for name in attr.split("."):
        if not hasattr(value, name):
            raise AttributeError(f"{module_name!r} has no attribute {attr!r}; check the name after the colon in {spec!r}")
        value = getattr(value, name)
    return value


def build_app(
    target: Any,
    spec: str,
    *,
    host: str,
    port: int,
    name: str | None,
    db: str | None,
    persistence: str | None = None,
    auth_tokens: Mapping[str, str] | None = None,
    max_body_size: int | None = None,
    max_concurrent_turns: int | None = None,
    expose_errors: bool = False,
    **options: Any,
) -> Any:
    """An ASGI app for ``target``: served as is if it is one, else a dict of flows made into one.

    ``options``: the transport, push and extended card options of ``create_a2a_app``.

    The store, auth and limits apply to a dict of flows; an app given as is keeps its own, so
    asking for them there is an error rather than silently ignored.
    """
    if isinstance(target, Mapping) and target and all(isinstance(f, BaseNode) for f in target.values()):
        from .a2a import BearerAuth, create_a2a_app, generate_agent_card
        from .a2a.card import skills_for_flows
        from .a2a.endpoint import DEFAULT_MAX_BODY_SIZE

        public_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        card = generate_agent_card(
            name=name or spec.partition(":")[0].rsplit(".", 1)[-1],
            url=f"http://{public_host}:{port}/a2a",
            skills=skills_for_flows(target),
        )
        return create_a2a_app(
            target,
            agent_card=card,
            persistence=open_persistence(db, persistence),
            auth=BearerAuth(tokens=auth_tokens) if auth_tokens else None,
            max_body_size=max_body_size or DEFAULT_MAX_BODY_SIZE,
            max_concurrent_turns=max_concurrent_turns,
            **options,
            expose_errors=expose_errors,
        )
    if callable(target):
        given = [
            option
            for option, value in (
                ("--auth-token", auth_tokens),
                ("--max-body-size", max_body_size),
                ("--max-concurrent-turns", max_concurrent_turns),
                ("--persistence", persistence),
                ("--grpc-port", options.get("grpc_port")),
                ("--push-allow-host", options.get("push_allowed_hosts")),
                ("--allow-private-push-targets", options.get("allow_private_push_targets")),
                ("--extended-card", options.get("extended_agent_card")),
                ("--expose-errors", expose_errors),
            )
            if value
        ]
        if given:
            raise ValueError(
                f"{spec!r} is an ASGI app, which keeps its own settings, so {', '.join(given)} would be ignored; "
                f"pass them to create_a2a_app(...) in that module, or point serve at a dict of flows."
            )
        return target
    raise ValueError(
        f"{spec!r} is a {type(target).__name__}, not a dict of flows or an ASGI app; point it at "
        f"e.g. flows = {{'greet': Flow(GreetNode())}}."
    )


def runs_command(args: argparse.Namespace) -> int:
    """``pocketmesh runs`` and ``pocketmesh runs show RUN_ID``."""
    from .errors import PocketMeshError
    from .inspection import list_run_summaries, load_for_show, render_run, render_table

    try:
        store = runs_store(args.db, args.prefix, args.backend)
    except (ImportError, AttributeError, ValueError, TypeError) as error:
        print(f"pocketmesh runs: {error}", file=sys.stderr)
        return 2

    async def report() -> int:
        try:
            if args.run_id is not None:
                print(render_run(await load_for_show(store, args.run_id)))
                return 0
            summaries = await list_run_summaries(store, args.status)
            print(render_table(summaries) if summaries else f"no {args.status + ' ' if args.status else ''}runs in {store!r}")
            return 0
        except PocketMeshError as error:
            print(f"pocketmesh runs: {error}", file=sys.stderr)
            return 1
        finally:
            close = getattr(store, "close", None)
            if close is not None and asyncio.iscoroutinefunction(close):
                await close()

    return asyncio.run(report())


def runs_store(db: str | None, prefix: str | None, backend: str | None) -> Any:
    """The store ``pocketmesh runs`` reads: ``--backend`` if given, else the one ``--db`` names."""
    from .persistence import Persistence

    if backend is not None:
        if db is not None or prefix is not None:
            raise ValueError("--backend names the store itself; drop --db / --prefix, or drop --backend.")
        target = load_target(backend)
        store = target() if isinstance(target, type) or not isinstance(target, Persistence) and callable(target) else target
        if not isinstance(store, Persistence):
            raise TypeError(
                f"--backend {backend} gave {store!r:.80}, which lacks the five persistence methods "
                f"(save_run, load_run, save_step, list_runs, delete_run)."
            )
        return store
    kind = backend_of(db, None)
    if prefix is not None and kind == "sqlite":
        raise ValueError(f"--prefix applies to PostgreSQL and Redis stores, not to the SQLite file {db!r}.")
    if kind == "sqlite":
        from .persistence.sqlite import default_path

        path = default_path() if db is None else Path(db)
        if not path.is_file():
            raise ValueError(f"no SQLite store at {str(path)!r}; pass --db with the file the server writes.")
    if prefix is None:
        return open_persistence(db, None)
    if kind == "postgres":
        from .persistence import PostgresPersistence

        return PostgresPersistence(db, table_prefix=prefix)
    from .persistence import RedisPersistence

    return RedisPersistence(db, prefix=prefix)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
