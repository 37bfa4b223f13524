"""``pocketmesh`` subcommands this package adds through the ``pocketmesh.commands`` entry points."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pocketmesh_testing.requirements import install_hint, missing_requirements


def add_demo_command(commands: Any) -> None:
    """Register ``pocketmesh demo``: serve the example agents and play the scenarios live."""
    demo = commands.add_parser(
        "demo",
        help="serve the example agents over A2A and play the scenario suite against them",
        description=(
            "Start `pocketmesh serve` for each agent the scenario files name (127.0.0.1, runs in "
            "SQLite), play every scenario against the live server, print the transcripts and a verdict."
        ),
    )
    demo.add_argument("targets", nargs="*", metavar="MODULE:ATTR", help="agents to serve (default: those the scenarios name)")
    demo.add_argument("--scenarios", action="append", metavar="DIR", help="scenario directory (default: scenarios)")
    demo.add_argument("--db", default="pocketmesh.sqlite", metavar="PATH", help="SQLite file (default: ./pocketmesh.sqlite)")
    demo.set_defaults(handler=_demo)


def _harness_missing(command: str) -> bool:
    if not missing_requirements():
        return False
    print(f"pocketmesh {command}: " + install_hint(f"`pocketmesh {command}`"), file=sys.stderr)
    return True


def _demo(args: argparse.Namespace) -> int:
    if _harness_missing("demo"):
        return 2
    from pocketmesh_testing.demo import run_main_job

    return run_main_job(args.targets or None, scenario_dirs=tuple(args.scenarios or ("scenarios",)), db=args.db)


def add_gate_command(commands: Any) -> None:
    """Register ``pocketmesh gate``: flow properties and scenarios as a release gate."""
    gate = commands.add_parser(
        "gate",
        help="run flow property tests and scenarios under the release profile, with coverage thresholds",
        add_help=False,  # --help goes to the gate's own parser, which knows its options
        prefix_chars="\0",  # hand every argument, options included, to the gate's own parser
    )
    gate.add_argument("gate_args", nargs=argparse.REMAINDER)
    gate.set_defaults(handler=_gate)


def _gate(args: argparse.Namespace) -> int:
    if _harness_missing("gate"):
        return 2
    from pocketmesh_testing.properties.gate import main

    return main(args.gate_args)


def add_replay_command(commands: Any) -> None:
    """Register ``pocketmesh replay``: kept failing examples and scenario files, run as tests."""
    replay = commands.add_parser(
        "replay",
        help="replay saved minimal failing examples (or scenario files) as tests",
        add_help=False,  # --help goes to the command's own parser, which also splits off `-- pytest args`
        prefix_chars="\0",
    )
    replay.add_argument("replay_args", nargs=argparse.REMAINDER)
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    if _harness_missing("replay"):
        return 2
    from pocketmesh_testing.properties.examples import replay_main

    return replay_main(args.replay_args)
