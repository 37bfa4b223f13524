"""Case 2: steps per second persisted to SQLite, a 1,000-step self-loop, like for like.

pocketmesh commits every step (state, step row, trace entry) before the next one starts, in
WAL mode. LangGraph runs the same loop with its SQLite checkpointer (``AsyncSqliteSaver``,
WAL) and ``durability="sync"`` (each checkpoint written before the next step: the same
guarantee). Each is measured at ``synchronous=FULL`` (SQLite's default, LangGraph's as it
ships) and ``synchronous=NORMAL`` (pocketmesh's default; set on LangGraph's connection with
``PRAGMA synchronous=NORMAL`` after its setup), and the ratios pair FULL with FULL and NORMAL
with NORMAL. LangGraph's default ``durability="async"`` (writes overlap the next step: a
weaker guarantee) is shown for reference.

    python benchmarks/case_persisted.py SYSTEM REPS   (worker: prints steps per second)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

NAME = "2. persisted steps/s (SQLite)"
STEPS = 1000
SYSTEMS = (
    "pocketmesh NORMAL",
    "LangGraph NORMAL, durability=sync",
    "pocketmesh FULL",
    "LangGraph FULL, durability=sync",
    "LangGraph FULL, durability=async (default)",
)
PAIRS = {
    "pocketmesh NORMAL": "LangGraph NORMAL, durability=sync",
    "pocketmesh FULL": "LangGraph FULL, durability=sync",
    "LangGraph FULL, durability=async (default)": "LangGraph FULL, durability=sync",
}
ROUNDS = 3


async def _pocketmesh(sync: str, reps: int, db: str) -> list[float]:
    from state_growth import counting_flow

    from pocketmesh import SQLitePersistence

    flow = counting_flow(STEPS)
    store = SQLitePersistence(db, synchronous=sync)
    rates = []
    for rep in range(reps + 1):
        start = time.perf_counter()
        result = await flow.run({"counter": 0}, run_id=f"run-{rep}", persistence=store)
        elapsed = time.perf_counter() - start
        assert result.status == "completed" and len(result.trace) == STEPS
        if rep:  # the first run is a warm-up
            rates.append(STEPS / elapsed)
    await store.close()
    return rates


async def _langgraph(durability: str, sync: str, reps: int, db: str) -> list[float]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from state_growth import counting_graph

    graph = counting_graph(STEPS)
    rates = []
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        await saver.setup()  # WAL, tables
        await saver.conn.execute(f"PRAGMA synchronous = {sync}")
        mode = await (await saver.conn.execute("PRAGMA synchronous")).fetchone()
        assert mode is not None and mode[0] == {"FULL": 2, "NORMAL": 1}[sync], mode
        app = graph.compile(checkpointer=saver)
        for rep in range(reps + 1):
            config = {"configurable": {"thread_id": f"run-{rep}"}, "recursion_limit": STEPS + 10}
            start = time.perf_counter()
            out = await app.ainvoke({"counter": 0}, config, durability=durability)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - start
            assert out["counter"] == STEPS
            if rep:
                rates.append(STEPS / elapsed)
    return rates


def measure(system: str, reps: int) -> float:
    """Steps per second, median of ``reps`` runs after one warm-up, on a fresh file."""
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.sqlite")
        if system.startswith("pocketmesh"):
            rates = asyncio.run(_pocketmesh(system.split()[-1], reps, db))
        else:
            sync = "NORMAL" if "NORMAL" in system else "FULL"
            rates = asyncio.run(_langgraph("sync" if "=sync" in system else "async", sync, reps, db))
    return sorted(rates)[len(rates) // 2]


def run(h: Any) -> list[Any]:
    from _harness import Row, alt_python, main_python, median, run_worker, spread

    per: dict[str, list[float]] = {s: [] for s in SYSTEMS}
    for r in range(ROUNDS):
        for system in SYSTEMS[r % len(SYSTEMS):] + SYSTEMS[: r % len(SYSTEMS)]:
            python = main_python() if system.startswith("pocketmesh") else alt_python()
            reps = "3" if system.startswith("pocketmesh") else "1"
            per[system].append(run_worker(python, "case_persisted", system, reps))
    rows = []
    for system in SYSTEMS:
        base = PAIRS.get(system)
        ratio = median(per[system]) / median(per[base]) if base else None
        note = f"ratio: steps/s over {base}" if base else ""
        rows.append(Row(NAME, f"{STEPS:,}-step loop", system, median(per[system]), "steps/s", ratio, note, spread(per[system])))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
