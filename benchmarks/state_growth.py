"""Step cost against state size, and what a backend keeps per step.

``steps SYSTEM BACKEND SIZE``: a self-loop whose node adds 1 to a counter, every step
checkpointed, over a shared state that also holds SIZE bytes of JSON the node never touches
(a list of small documents); prints microseconds per step (median of several runs).
SYSTEM is ``pocketmesh`` (``InMemoryPersistence`` or ``SQLitePersistence``, ``NORMAL``)
or ``LangGraph`` (``AsyncSqliteSaver``, ``synchronous=NORMAL``, ``durability="sync"``: the
comparison env only). The run's first save, which must write the whole state, is included:
1,000 steps share it.

``memory BACKEND STEPS``: the bytes a backend keeps per step after a STEPS-step run (the
run's result dropped): for ``memory``, the Python heap ``tracemalloc`` sees the store holding;
for ``sqlite``, what the database file (and its WAL, checkpointed) grew by.

    python benchmarks/state_growth.py steps pocketmesh memory 1000000
    python benchmarks/state_growth.py memory memory 100000
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

STEPS = 1000


def documents(size: int) -> list[dict[str, Any]]:
    """About ``size`` bytes of JSON: small documents of ~100 bytes each."""
    one = len(json.dumps({"id": 0, "title": "document 0", "body": "x" * 60}))
    return [{"id": i, "title": f"document {i}", "body": "x" * 60} for i in range(max(1, size // one))]


def counting_flow(steps: int) -> Any:
    """A self-loop that adds 1 to ``shared["counter"]`` until it reaches ``steps``."""
    from pocketmesh import BaseNode, Flow

    class Count(BaseNode):
        async def finalize(self, shared: Any, prep: Any, result: Any, params: Any) -> Any:
            shared["counter"] += 1
            return "again" if shared["counter"] < steps else "complete"

    node = Count()
    node - "again" >> node
    return Flow(node, max_steps=steps + 1)


def counting_graph(steps: int) -> Any:
    """LangGraph's ``counting_flow``: a self-loop node adding 1 to ``counter`` until ``steps``
    (the state may also hold ``documents``, which the node never touches). Uncompiled."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        counter: int
        documents: list[Any]

    async def count(state: State) -> dict[str, Any]:
        return {"counter": state["counter"] + 1}

    graph = StateGraph(State)
    graph.add_node("count", count)
    graph.add_edge(START, "count")
    graph.add_conditional_edges("count", lambda s: "count" if s["counter"] < steps else END)
    return graph


async def pocketmesh_steps(backend: str, size: int, reps: int) -> list[float]:
    from pocketmesh import InMemoryPersistence, SQLitePersistence

    flow = counting_flow(STEPS)
    docs = documents(size)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        store: Any = InMemoryPersistence() if backend == "memory" else SQLitePersistence(os.path.join(tmp, "s.sqlite"))
        for rep in range(reps + 1):
            start = time.perf_counter()
            result = await flow.run({"counter": 0, "documents": docs}, run_id=f"r{rep}", persistence=store)
            elapsed = time.perf_counter() - start
            assert result.status == "completed", result.error
            if rep:
                times.append(elapsed / STEPS * 1e6)
        if backend == "sqlite":
            await store.close()
    return times


async def langgraph_steps(size: int, reps: int) -> list[float]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    graph = counting_graph(STEPS)
    docs = documents(size)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncSqliteSaver.from_conn_string(os.path.join(tmp, "lg.sqlite")) as saver:
            await saver.setup()
            await saver.conn.execute("PRAGMA synchronous = NORMAL")
            app = graph.compile(checkpointer=saver)
            for rep in range(reps + 1):
                config = {"configurable": {"thread_id": f"r{rep}"}, "recursion_limit": STEPS + 10}
                start = time.perf_counter()
                await app.ainvoke({"counter": 0, "documents": docs}, config, durability="sync")  # type: ignore[arg-type]
                if rep:
                    times.append((time.perf_counter() - start) / STEPS * 1e6)
    return times


async def kept_per_step(backend: str, steps: int) -> float:
    import tracemalloc

    from pocketmesh import InMemoryPersistence, SQLitePersistence

    flow = counting_flow(steps)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kept.sqlite")
        if backend == "memory":
            store: Any = InMemoryPersistence()
            await flow.run({"counter": steps - 1}, run_id="warm", persistence=store)  # tables, interning
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            result = await flow.run({"counter": 0}, run_id="run", persistence=store)
            assert result.status == "completed"
            del result
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            return kept / steps
        store = SQLitePersistence(path)
        await flow.run({"counter": steps - 1}, run_id="warm", persistence=store)
        await store.close()
        before = _file_bytes(path)
        result = await flow.run({"counter": 0}, run_id="run", persistence=store)
        assert result.status == "completed"
        await store.close()
        return (_file_bytes(path) - before) / steps


def _file_bytes(path: str) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def main() -> None:
    kind = sys.argv[1]
    if kind == "steps":
        system, backend, size = sys.argv[2], sys.argv[3], int(sys.argv[4])
        reps = int(sys.argv[5]) if len(sys.argv) > 5 else 5
        if system == "LangGraph":
            times = asyncio.run(langgraph_steps(size, reps))
        else:
            times = asyncio.run(pocketmesh_steps(backend, size, reps))
        print(json.dumps(statistics.median(times)))
    else:
        print(json.dumps(asyncio.run(kept_per_step(sys.argv[2], int(sys.argv[3])))))


if __name__ == "__main__":
    main()
