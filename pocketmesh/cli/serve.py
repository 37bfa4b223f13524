"""``pocketmesh serve``: a dict of flows (or an ASGI app) served over A2A with uvicorn."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..node import BaseNode
from ..targets import attribute_of, split_target
from .stores import (
    BACKENDS,
    backend_of,
    count,
    open_persistence,
    port_number,
    positive_int,
)

AUTH_TOKENS_ENV = "POCKETMESH_AUTH_TOKENS"


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
        "--max-body-size", metavar="BYTES", type=positive_int, default=None,
        help="largest JSON-RPC request body accepted (default: 1048576)",
    )
    serve.add_argument(
        "--max-message-size", metavar="BYTES", type=count, default=None,
        help="largest message accepted, in any transport (default: 1048576; 0: no limit)",
    )
    serve.add_argument(
        "--max-history-size", metavar="BYTES", type=count, default=None,
        help="largest history a task may grow to; a message past it is refused (default: 8388608; 0: no limit)",
    )
    serve.add_argument(
        "--max-concurrent-turns", metavar="N", type=count, default=None,
        help="turns run at once by this server, the rest wait (default: 16 on PostgreSQL, else no limit; 0: no limit)",
    )
    serve.add_argument("--name", help="agent name on the card (default: the module name)")
    serve.add_argument(
        "--grpc-port", metavar="PORT", type=port_number, default=None,
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
            **serve_options(args),
            expose_errors=args.expose_errors,
            max_message_size=args.max_message_size,
            max_history_size=args.max_history_size,
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
    module_name, attr = split_target(spec, "pocketmesh.examples.greeting:flows")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return attribute_of(importlib.import_module(module_name), attr, spec)


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
    max_message_size: int | None = None,
    max_history_size: int | None = None,
    **options: Any,
) -> Any:
    """An ASGI app for ``target``: served as is if it is one, else a dict of flows made into one.

    ``options``: the transport, push and extended card options of ``create_a2a_app``.

    The store, auth and limits apply to a dict of flows; an app given as is keeps its own, so
    asking for them there is an error rather than silently ignored.
    """
    if isinstance(target, Mapping) and target and all(isinstance(f, BaseNode) for f in target.values()):
        from ..a2a import BearerAuth, create_a2a_app, generate_agent_card
        from ..a2a.card import skills_for_flows
        from ..a2a.endpoint import DEFAULT_MAX_BODY_SIZE

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
            **options,
            **limits,
            expose_errors=expose_errors,
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
                ("--grpc-port", options.get("grpc_port")),
                ("--push-allow-host", options.get("push_allowed_hosts")),
                ("--allow-private-push-targets", options.get("allow_private_push_targets")),
                ("--extended-card", options.get("extended_agent_card")),
                ("--expose-errors", expose_errors),
            )
            if value is not None and value is not False and value != {}
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
