"""The ``pocketmesh`` command line: ``pocketmesh serve MODULE:ATTR`` and friends."""

from __future__ import annotations

import argparse
import hashlib
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
        help="serve flows over A2A (JSON-RPC at /a2a, card at /.well-known/agent-card.json)",
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
        "--auth-token-file", metavar="PATH",
        help="require a bearer token: one TOKEN[=OWNER] per line of PATH ('#' starts a comment). "
        "The way to pass tokens: unlike --auth-token, they stay out of the process list",
    )
    serve.add_argument(
        "--auth-token", metavar="TOKEN[=OWNER]", action="append", default=[],
        help="require 'Authorization: Bearer TOKEN' (repeatable); tasks are scoped to OWNER, or to an "
        "owner of the token's own. Shows in ps: prefer --auth-token-file or $POCKETMESH_AUTH_TOKENS "
        "(comma-separated TOKEN[=OWNER])",
    )
    serve.add_argument(
        "--max-body-size", metavar="BYTES", type=_positive_int, default=None,
        help="largest JSON-RPC request body accepted (default: 1048576)",
    )
    serve.add_argument(
        "--max-message-size", metavar="BYTES", type=_count, default=None,
        help="largest message accepted, in any transport (default: 1048576; 0: no limit)",
    )
    serve.add_argument(
        "--max-history-size", metavar="BYTES", type=_count, default=None,
        help="largest history a task may grow to; a message past it is refused (default: 8388608; 0: no limit)",
    )
    serve.add_argument(
        "--max-concurrent-turns", metavar="N", type=_count, default=None,
        help="turns run at once by this server, the rest wait (default: 16 on PostgreSQL, else no limit; 0: no limit)",
    )
    serve.add_argument("--name", help="agent name on the card (default: the module name)")
    serve.set_defaults(handler=serve_command)


BACKENDS = ("sqlite", "postgres", "redis")
AUTH_TOKENS_ENV = "POCKETMESH_AUTH_TOKENS"
_URL_SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "redis": "redis", "rediss": "redis", "unix": "redis"}


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes >= 1, got {text!r}; e.g. 4194304 for 4 MiB")
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


def token_owner(token: str) -> str:
    """The owner of a token given without ``=OWNER``: its own, named by a hash of the token, so
    two such tokens never share tasks and the name gives the token away to nobody."""
    return "token-" + hashlib.sha256(b"pocketmesh-owner\0" + token.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def parse_auth_tokens(values: Sequence[str], token_file: str | None = None) -> dict[str, str]:
    """``TOKEN[=OWNER]`` values, from ``$POCKETMESH_AUTH_TOKENS`` (comma-separated), the lines of
    ``token_file`` and ``--auth-token``, as ``{token: owner}``."""
    entries = [(f"${AUTH_TOKENS_ENV}", v) for v in os.environ.get(AUTH_TOKENS_ENV, "").split(",") if v.strip()]
    if token_file is not None:
        try:
            lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--auth-token-file {token_file!r} cannot be read ({error}); give a UTF-8 text file.") from None
        entries += [
            (f"{token_file}, line {number}", line)
            for number, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    entries += [("--auth-token", v) for v in values]
    tokens: dict[str, str] = {}
    for where, value in entries:
        token, sep, owner = (part.strip() for part in value.strip().partition("="))
        if not token or (sep and not owner):
            raise ValueError(
                f"{where}: expected TOKEN or TOKEN=OWNER with both parts non-empty, got {value.strip()[:4]!r}...; "
                f"e.g. s3cret=alice."
            )
        tokens[token] = owner or token_owner(token)
    return tokens


def serve_command(args: argparse.Namespace) -> int:
    """Load ``MODULE:ATTR`` and serve it until interrupted."""
    import uvicorn

    try:
        backend = backend_of(args.db, args.persistence)
        tokens = parse_auth_tokens(args.auth_token, args.auth_token_file)
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
            max_message_size=args.max_message_size,
            max_history_size=args.max_history_size,
        )
    except (ImportError, AttributeError, ValueError) as error:
        print(f"pocketmesh serve: {error}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


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
    max_message_size: int | None = None,
    max_history_size: int | None = None,
) -> Any:
    """An ASGI app for ``target``: served as is if it is one, else a dict of flows made into one.

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
        limits = {
            name: value
            for name, value in (("max_message_size", max_message_size), ("max_history_size", max_history_size))
            if value is not None
        }
        return create_a2a_app(
            target,
            agent_card=card,
            persistence=open_persistence(db, persistence),
            auth=BearerAuth(tokens=auth_tokens) if auth_tokens else None,
            max_body_size=max_body_size or DEFAULT_MAX_BODY_SIZE,
            max_concurrent_turns=max_concurrent_turns,
            **limits,
        )
    if callable(target):
        given = [
            option
            for option, value in (
                ("--auth-token", auth_tokens),
                ("--max-body-size", max_body_size),
                ("--max-concurrent-turns", max_concurrent_turns),
                ("--max-message-size", max_message_size),
                ("--max-history-size", max_history_size),
                ("--persistence", persistence),
            )
            if value is not None and value != {}
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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
