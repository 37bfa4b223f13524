"""``pocketmesh runs``: list the runs a store holds, and show one with its trace and state."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from .serve import load_target
from .stores import backend_of, open_persistence

RUN_STATUSES = ("running", "input-required", "completed", "failed", "canceled")


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


def runs_command(args: argparse.Namespace) -> int:
    """``pocketmesh runs`` and ``pocketmesh runs show RUN_ID``."""
    from ..errors import PocketMeshError, RunNotFoundError
    from ..inspection import list_run_summaries, load_for_show, render_run, render_table

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
        except RunNotFoundError as error:
            print(f"pocketmesh runs: no run {error.run_id!r} in {store!r}; list the runs it holds with: "
                  f"{_listing_command(args)}", file=sys.stderr)
            return 1
        except PocketMeshError as error:
            print(f"pocketmesh runs: {error}", file=sys.stderr)
            return 1
        finally:
            close = getattr(store, "close", None)
            if close is not None and asyncio.iscoroutinefunction(close):
                await close()

    return asyncio.run(report())


def _listing_command(args: argparse.Namespace) -> str:
    """``pocketmesh runs`` with the store options given, to list that store's runs."""
    import shlex

    words = ["pocketmesh", "runs"]
    for option in ("db", "prefix", "backend"):
        value = getattr(args, option, None)
        if value is not None:
            words += [f"--{option}", str(value)]
    return shlex.join(words)


def runs_store(db: str | None, prefix: str | None, backend: str | None) -> Any:
    """The store ``pocketmesh runs`` reads: ``--backend`` if given, else the one ``--db`` names."""
    from ..persistence import Persistence

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
        from ..persistence.sqlite import default_path

        path = default_path() if db is None else Path(db)
        if not path.is_file():
            raise ValueError(f"no SQLite store at {str(path)!r}; pass --db with the file the server writes.")
    if prefix is None:
        return open_persistence(db, None)
    if kind == "postgres":
        from ..persistence import PostgresPersistence

        return PostgresPersistence(db, table_prefix=prefix)
    from ..persistence import RedisPersistence

    return RedisPersistence(db, prefix=prefix)
