"""Record a scenario file from a real conversation, so a good run becomes a regression test.

    python -m pocketmesh_testing.conversations.recorder --agent http://127.0.0.1:4000 --skill greeting \\
        --turn Dana --turn bye --out scenarios/greeting_recorded.yaml

``--agent`` is a live agent's URL or ``module:attr`` of a dict of flows (served in-process).
Without ``--turn``, user messages are read from stdin, one per line. Each observed reply
becomes the turn's expectations: its state, its exact text, and its artifacts; ``--snapshot``
also stores the shared state of each turn (in-process, or with ``--db`` for a live agent).

An in-process agent's model traffic (the openai SDK, any httpx / requests call) is recorded
too, secrets scrubbed, into a cassette beside the scenario
(``cassettes/<file stem>/<scenario>.yaml``), which the file names in ``cassette:``: the
recorded scenario then replays in-process and offline. A live agent's model calls happen in
its own process, out of reach; ``--no-cassette`` skips the recording.
The written file is checked against the scenario schema before the command succeeds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from pocketmesh_testing.conversations.agents import Agent, Reply, a2a_agent, artifact_text, remote_agent, whole_numbers
from pocketmesh_testing.conversations.format import load_scenarios
from pocketmesh_testing.conversations.loading import load_flows
from pocketmesh_testing.conversations.snapshots import dumps, normalise, scenario_snapshot_path
from pocketmesh_testing.conversations.transcript import render_transcript

__all__ = ["cassette_path", "main", "record"]


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
        expect["artifacts"] = [_artifact_expectation(a) for a in reply.artifacts]
    if snapshot and reply.has_shared:
        expect["snapshot"] = True
    return expect


def _artifact_expectation(artifact: dict[str, Any]) -> dict[str, Any]:
    wanted: dict[str, Any] = {"name": artifact["name"]} if artifact.get("name") else {}
    data = [whole_numbers(p["data"]) for p in artifact.get("parts", []) if "data" in p]
    if data:
        wanted["data"] = data[0] if len(data) == 1 else data
    else:
        wanted["text"] = artifact_text(artifact)
    return wanted


def cassette_path(out: Path, scenario_name: str) -> Path:
    """Where the recorder keeps a scenario's model traffic: ``cassettes/<file stem>/<scenario>.yaml`` beside it."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", scenario_name).strip("-") or "scenario"
    return out.parent / "cassettes" / out.stem / f"{slug}.yaml"


@contextlib.contextmanager
def _recording(path: Path | None) -> Iterator[Any]:
    if path is None:
        yield None
        return
    from pocketmesh_testing.doubles.cassettes import CassetteSettings, use_llm_cassette

    path.unlink(missing_ok=True)  # a new recording replaces the old one whole
    with use_llm_cassette(path, CassetteSettings(record_mode="all")) as cassette:
        yield cassette


async def record(
    agent_spec: str, turns: Sequence[str], out: Path, *, skill: str | None = None, name: str | None = None,
    stream: bool = False, snapshot: bool = False, db: str | None = None, cassette: bool = True,
) -> dict[str, Any]:
    """Play ``turns`` against the agent and write what it answered as a scenario file at ``out``.

    An in-process agent's model traffic goes into a cassette the file names (unless ``cassette``
    is false), so the scenario replays without the model.
    """
    agent = _agent(agent_spec, db)
    scenario_name = name or out.stem.replace("_", " ")
    document: dict[str, Any] = {"name": scenario_name, "agent": agent_spec}
    if skill:
        document["skill"] = skill
    recorded: list[dict[str, Any]] = []
    snapshots: list[tuple[int, dict[str, Any]]] = []
    live = agent_spec.startswith(("http://", "https://"))
    tape = cassette_path(out, scenario_name) if cassette and not live else None
    with _recording(tape) as recording:
        await _converse(agent, agent_spec, scenario_name, turns, skill, stream, snapshot, recorded, snapshots)
    if tape is not None and recording is not None:
        if recording.interactions:
            document["cassette"] = tape.relative_to(out.parent).as_posix()
        else:
            tape.unlink(missing_ok=True)  # the agent never called out: nothing to replay
    elif cassette and live:
        print(f"recorder: {agent_spec} is a live agent; its model calls happen in its own process and are not "
              f"recorded. Record with --agent module:attr to replay the scenario offline.", file=sys.stderr)
    document["turns"] = recorded
    _write(out, document, scenario_name, snapshots)
    return document


async def _converse(
    agent: Agent, agent_spec: str, scenario_name: str, turns: Sequence[str], skill: str | None, stream: bool,
    snapshot: bool, recorded: list[dict[str, Any]], snapshots: list[tuple[int, dict[str, Any]]],
) -> None:
    async with agent:
        conv = agent.conversation(skill=skill)
        for number, text in enumerate(turns, 1):
            reply = await conv.stream(text) if stream else await conv.send(text)
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


def _write(out: Path, document: dict[str, Any], scenario_name: str, snapshots: list[tuple[int, dict[str, Any]]]) -> None:
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
    parser.add_argument("--no-cassette", action="store_true",
                        help="do not record the in-process agent's model traffic into a cassette")
    args = parser.parse_args(argv)
    turns = args.turns or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not turns:
        parser.error("no user turns: pass --turn TEXT (repeatable) or pipe one message per line on stdin.")
    try:
        asyncio.run(record(args.agent, turns, args.out, skill=args.skill, name=args.name, stream=args.stream,
                           snapshot=args.snapshot, db=args.db, cassette=not args.no_cassette))
    except Exception as error:  # a CLI reports, it does not dump tracebacks
        print(f"recorder: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
