"""Record a scenario file from a real conversation, so a good run becomes a regression test.

    python -m pocketmesh_testing.conversations.recorder --agent http://127.0.0.1:4000 --skill greeting \\
        --turn Dana --turn bye --out scenarios/greeting_recorded.yaml

``--agent`` is a live agent's URL or ``module:attr`` of a dict of flows (served in-process).
Without ``--turn``, user messages are read from stdin, one per line. Each observed reply
becomes the turn's expectations: its state, its exact text, and its artifacts; ``--snapshot``
also stores the shared state of each turn (in-process, or with ``--db`` for a live agent).
The written file is checked against the scenario schema before the command succeeds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pocketmesh_testing.conversations.agents import Agent, Reply, a2a_agent, remote_agent
from pocketmesh_testing.conversations.format import load_scenarios
from pocketmesh_testing.conversations.collection import load_flows
from pocketmesh_testing.conversations.snapshots import dumps, normalise, scenario_snapshot_path
from pocketmesh_testing.conversations.transcript import render_transcript

__all__ = ["main", "record"]


def _agent(spec: str, db: str | None) -> Agent:
    if spec.startswith(("http://", "https://")):
        persistence = None
        if db:
            from pocketmesh import SQLitePersistence

            persistence = SQLitePersistence(db)
        return remote_agent(spec, persistence=persistence)
    return a2a_agent(load_flows(spec, Path.cwd()))


def _expectations(reply: Reply, snapshot: bool) -> dict[str, Any]:
    expect: dict[str, Any] = {"state": reply.state, "text": reply.text}
    if reply.artifacts:
        expect["artifacts"] = [
            {k: v for k, v in (("name", a.get("name")), ("text", "".join(str(p.get("text", "")) for p in a.get("parts", [])))) if v is not None}
            for a in reply.artifacts
        ]
    if snapshot and reply.has_shared:
        expect["snapshot"] = True
    return expect


async def record(
    agent_spec: str, turns: Sequence[str], out: Path, *, skill: str | None = None, name: str | None = None,
    stream: bool = False, snapshot: bool = False, db: str | None = None,
) -> dict[str, Any]:
    """Play ``turns`` against the agent and write what it answered as a scenario file at ``out``."""
    agent = _agent(agent_spec, db)
    scenario_name = name or out.stem.replace("_", " ")
    document: dict[str, Any] = {"name": scenario_name, "agent": agent_spec}
    if skill:
        document["skill"] = skill
    recorded: list[dict[str, Any]] = []
    snapshots: list[tuple[int, dict[str, Any]]] = []
    async with agent:
        conv = agent.conversation(skill=skill)
        for number, text in enumerate(turns, 1):
            reply = (await conv.stream(text)).reply if stream else await conv.send(text)
            turn: dict[str, Any] = {"user": text}
            if stream:
                turn["stream"] = True
            turn["expect"] = _expectations(reply, snapshot)
            recorded.append(turn)
            if snapshot and reply.has_shared:
                snapshots.append((number, reply.shared))
            if reply.state not in ("input-required", "auth-required"):
                break  # the task is over; later messages would be refused
        print("\n".join(render_transcript(f"recorded {scenario_name!r} from {agent_spec}", conv.exchanges)), file=sys.stderr)
    document["turns"] = recorded
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Recorded from a live conversation; edit the expectations to what must stay true.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    for number, shared in snapshots:
        path = scenario_snapshot_path(out, scenario_name, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(normalise(shared)), encoding="utf-8")
    load_scenarios(out)  # the file we wrote must be one the plugin accepts
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pocketmesh_testing.recorder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", required=True, help="live agent URL, or module:attr of a dict of flows")
    parser.add_argument("--skill", help="skill id (default: the agent's first)")
    parser.add_argument("--out", required=True, type=Path, help="scenario file to write, e.g. scenarios/x.yaml")
    parser.add_argument("--turn", action="append", dest="turns", help="a user message (repeat; default: stdin lines)")
    parser.add_argument("--name", help="scenario name (default: from the file name)")
    parser.add_argument("--stream", action="store_true", help="send with message/stream")
    parser.add_argument("--snapshot", action="store_true", help="also snapshot the shared state of every turn")
    parser.add_argument("--db", help="SQLite file of a live agent, for --snapshot")
    args = parser.parse_args(argv)
    turns = args.turns or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not turns:
        parser.error("no user turns: pass --turn TEXT (repeatable) or pipe one message per line on stdin.")
    try:
        asyncio.run(record(args.agent, turns, args.out, skill=args.skill, name=args.name, stream=args.stream,
                           snapshot=args.snapshot, db=args.db))
    except Exception as error:  # a CLI reports, it does not dump tracebacks
        print(f"recorder: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
