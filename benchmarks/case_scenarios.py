"""Case 4: scenario turns per second, in-process and against ``pocketmesh serve``.

The turns are those of ``scenarios/greeting.yaml`` (both scenarios: five turns, two of them
streamed), played with :func:`pocketmesh_testing.conversations.player.play`, every expectation
checked (shared state and the snapshot included), many times over, each repetition a new task:

* in-process: ``a2a_agent(flows)`` serves the flows over the ASGI transport, in-memory
  persistence (its default);
* in-process, SQLite: the same with ``SQLitePersistence`` in a temp dir, to separate the cost
  of the store from that of the network hop;
* ``pocketmesh serve``: a subprocess on a free 127.0.0.1 port, runs in SQLite in a temp dir,
  played through ``remote_agent(url, persistence=<its SQLite file>)`` as ``pocketmesh demo``
  does (the client reads shared state from the server's file). Server start-up is not timed.

    python benchmarks/case_scenarios.py SYSTEM REPS   (worker: prints {"turns_per_s", "turns"})
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "4. scenario turns"
HERE = Path(__file__).resolve().parent
SCENARIO_FILE = HERE.parent / "scenarios" / "greeting.yaml"
TARGET = "pocketmesh.examples.greeting:flows"
SYSTEMS = ("in-process (a2a_agent, in-memory)", "in-process (a2a_agent, SQLite)", "pocketmesh serve (remote_agent, SQLite)")
REPS = 40
"""Repetitions of the whole file per worker, after one untimed warm-up."""
ROUNDS = 5
QUIET = {"OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false"}
"""Tracing off, as ``pocketmesh demo`` runs its servers."""


def _start_server(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``pocketmesh serve`` on a free loopback port, runs in ``db``; (process, base URL) once its card answers."""
    import httpx

    from pocketmesh_testing.doubles.loopback import free_port

    port = free_port()
    log = db.with_suffix(".log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "pocketmesh.cli", "serve", TARGET, "--host", "127.0.0.1", "--port", str(port), "--db", str(db)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET},
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pocketmesh serve exited with {process.returncode}:\n{db.with_suffix('.log').read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/.well-known/agent-card.json", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"pocketmesh serve did not answer on {url} within 60 s")


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def _play_reps(agent: Any, reps: int) -> dict[str, float]:
    """Turns per second over ``reps`` plays of every scenario in the file, after one warm-up play;
    also the number of turns timed."""
    from pocketmesh_testing.conversations.format import load_scenarios
    from pocketmesh_testing.conversations.player import play

    scenarios = load_scenarios(SCENARIO_FILE)
    turns = sum(len(s.turns) for s in scenarios)

    async def once() -> None:
        for scenario in scenarios:
            await play(scenario, agent)  # a mismatch raises: every timed turn met its expectations

    await once()
    start = time.perf_counter()
    for _ in range(reps):
        await once()
    return {"turns_per_s": turns * reps / (time.perf_counter() - start), "turns": turns * reps}


def measure(system: str, reps: int) -> dict[str, float]:
    """Turns per second for ``system`` (one of ``SYSTEMS``), and the number of turns timed."""
    os.environ.update(QUIET)
    from pocketmesh import SQLitePersistence
    from pocketmesh_testing.conversations.agents import a2a_agent, remote_agent
    from pocketmesh_testing.conversations.collection import load_flows

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.sqlite"
        if system == SYSTEMS[0] or system == SYSTEMS[1]:
            store = SQLitePersistence(db) if system == SYSTEMS[1] else None

            async def inprocess() -> dict[str, float]:
                try:
                    async with a2a_agent(load_flows(TARGET), persistence=store) as agent:
                        return await _play_reps(agent, reps)
                finally:
                    if store is not None:
                        await store.close()

            return asyncio.run(inprocess())
        if system != SYSTEMS[2]:
            raise ValueError(f"unknown system {system!r}; one of {SYSTEMS}")
        process, url = _start_server(db)
        try:
            async def remote() -> dict[str, float]:
                reader = SQLitePersistence(db)
                try:
                    async with remote_agent(url, persistence=reader) as agent:
                        return await _play_reps(agent, reps)
                finally:
                    await reader.close()

            return asyncio.run(remote())
        finally:
            _stop_server(process)


def run(h: Any) -> list[Any]:
    """Alternate the systems over ``ROUNDS`` rounds, each in a fresh subprocess; medians."""
    from _harness import Row, main_python, median, run_worker, spread

    per: dict[str, list[float]] = {s: [] for s in SYSTEMS}
    turns = 0
    for r in range(ROUNDS):
        for system in SYSTEMS[r % len(SYSTEMS):] + SYSTEMS[: r % len(SYSTEMS)]:
            out = run_worker(main_python(), "case_scenarios", system, str(REPS))
            per[system].append(out["turns_per_s"])
            turns = int(out["turns"])
    ours = median(per[SYSTEMS[0]])
    return [
        Row(NAME, f"greeting.yaml, {turns} turns x {ROUNDS} rounds", system, median(per[system]), "turns/s",
            ours / median(per[system]), "ratio: in-process (in-memory) turns/s over this row's", spread(per[system]))
        for system in SYSTEMS
    ]


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
