"""The ``pocketmesh`` command line: ``pocketmesh serve MODULE:ATTR``, ``pocketmesh runs`` and the
commands other packages add (``demo``, ``gate``, ``replay`` from the test harness)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .runs import RUN_STATUSES, add_runs_command, runs_command, runs_store
from .serve import (
    AUTH_TOKENS_ENV,
    add_serve_command,
    build_app,
    load_card,
    load_target,
    parse_auth_tokens,
    serve_command,
    serve_options,
    token_owner,
)
from .stores import BACKENDS, backend_of, open_persistence

__all__ = [
    "AUTH_TOKENS_ENV",
    "BACKENDS",
    "RUN_STATUSES",
    "add_plugin_commands",
    "add_runs_command",
    "add_serve_command",
    "backend_of",
    "build_app",
    "build_parser",
    "load_card",
    "load_target",
    "main",
    "open_persistence",
    "parse_auth_tokens",
    "runs_command",
    "runs_store",
    "serve_command",
    "serve_options",
    "token_owner",
]


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
