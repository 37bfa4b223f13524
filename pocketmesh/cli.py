"""The ``pocketmesh`` command line: ``pocketmesh serve MODULE:ATTR`` and friends."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
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
    serve.add_argument("--db", metavar="PATH", help="SQLite file for runs and tasks (default: $POCKETMESH_DB_PATH or ./pocketmesh.sqlite)")
    serve.add_argument("--name", help="agent name on the card (default: the module name)")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """Load ``MODULE:ATTR`` and serve it until interrupted."""
    import uvicorn

    if args.db:
        # Set before loading the target, so an app built at import time uses it too.
        os.environ["POCKETMESH_DB_PATH"] = args.db
    try:
        target = load_target(args.target)
    except (ImportError, AttributeError, ValueError) as error:
        print(f"pocketmesh serve: {error}", file=sys.stderr)
        return 2
    app = build_app(target, args.target, host=args.host, port=args.port, name=args.name, db=args.db)
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


def build_app(target: Any, spec: str, *, host: str, port: int, name: str | None, db: str | None) -> Any:
    """An ASGI app for ``target``: served as is if it is one, else a dict of flows made into one."""
    if isinstance(target, Mapping) and target and all(isinstance(f, BaseNode) for f in target.values()):
        from .a2a import create_a2a_app, generate_agent_card
        from .a2a.card import skills_for_flows
        from .persistence import SQLitePersistence

        public_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        card = generate_agent_card(
            name=name or spec.partition(":")[0].rsplit(".", 1)[-1],
            url=f"http://{public_host}:{port}/a2a",
            skills=skills_for_flows(target),
        )
        return create_a2a_app(target, agent_card=card, persistence=SQLitePersistence(db))
    if callable(target):
        return target
    raise ValueError(
        f"{spec!r} is a {type(target).__name__}, not a dict of flows or an ASGI app; point it at "
        f"e.g. flows = {{'greet': Flow(GreetNode())}}."
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
