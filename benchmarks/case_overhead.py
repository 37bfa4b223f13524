"""Case 1: per-step overhead without persistence (1,000-node chain, 10,000-iteration self-loop).

pocketmesh runs with its trace (always on) and a status hook; PocketFlow ``AsyncFlow`` and
LangGraph (``ainvoke``, no checkpointer) run the same graphs; a bare ``await`` loop is the floor.

    python benchmarks/case_overhead.py SYSTEM WORKLOAD REPS   (worker: prints seconds per step)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

NAME = "1. per-step overhead"
CHAIN, LOOP = 1000, 10_000
SYSTEMS = ("bare await loop", "pocketmesh (trace + hook)", "pocketmesh (trace, no hook)", "PocketFlow AsyncFlow", "LangGraph")
ALT = {"PocketFlow AsyncFlow", "LangGraph"}
ROUNDS = 5


def _pocketmesh(workload: str, hook: bool) -> tuple[Any, int]:
    from pocketmesh import BaseNode, Flow

    class Step(BaseNode):
        async def prepare(self, shared: Any, params: Any) -> Any:
            return None

        async def execute(self, prep: Any, shared: Any, params: Any, attempt: int) -> Any:
            return None

        async def finalize(self, shared: Any, prep: Any, result: Any, params: Any) -> Any:
            return None

    class Again(Step):
        async def finalize(self, shared: Any, prep: Any, result: Any, params: Any) -> Any:
            shared["i"] += 1
            return "again" if shared["i"] < LOOP else "complete"

    def on_status(update: Any) -> None:
        pass

    if workload == "chain":
        nodes = [Step(name=f"S{i}") for i in range(CHAIN)]
        for a, b in zip(nodes, nodes[1:]):
            a >> b
        flow, steps = Flow(nodes[0], max_steps=CHAIN + 1), CHAIN
    else:
        node = Again()
        node - "again" >> node
        flow, steps = Flow(node, max_steps=LOOP + 1), LOOP
    hooks = {"on_status_update": on_status} if hook else {}

    async def once() -> None:
        result = await flow.run({"i": 0}, **hooks)
        assert result.status == "completed" and len(result.trace) == steps

    return once, steps


def _pocketflow(workload: str) -> tuple[Any, int]:
    from pocketflow import AsyncFlow, AsyncNode

    class Step(AsyncNode):  # type: ignore[misc]
        async def prep_async(self, shared: Any) -> Any:
            return None

        async def exec_async(self, prep: Any) -> Any:
            return None

        async def post_async(self, shared: Any, prep: Any, result: Any) -> Any:
            return None

    class Again(Step):
        async def post_async(self, shared: Any, prep: Any, result: Any) -> Any:
            shared["i"] += 1
            return "again" if shared["i"] < LOOP else "done"

    if workload == "chain":
        nodes = [Step() for _ in range(CHAIN)]
        for a, b in zip(nodes, nodes[1:]):
            a >> b
        flow, steps = AsyncFlow(start=nodes[0]), CHAIN
    else:
        node = Again()
        node - "again" >> node
        node - "done" >> AsyncNode()  # ends quietly (one extra no-op node)
        flow, steps = AsyncFlow(start=node), LOOP

    async def once() -> None:
        await flow.run_async({"i": 0})

    return once, steps


def _langgraph(workload: str) -> tuple[Any, int]:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        i: int

    graph = StateGraph(State)
    if workload == "chain":
        async def step(state: State) -> dict[str, Any]:
            return {}

        names = [f"s{i}" for i in range(CHAIN)]
        for name in names:
            graph.add_node(name, step)
        graph.add_edge(START, names[0])
        for a, b in zip(names, names[1:]):
            graph.add_edge(a, b)
        graph.add_edge(names[-1], END)
        steps = CHAIN
    else:
        async def again(state: State) -> dict[str, Any]:
            return {"i": state["i"] + 1}

        graph.add_node("again", again)
        graph.add_edge(START, "again")
        graph.add_conditional_edges("again", lambda s: "again" if s["i"] < LOOP else END)
        steps = LOOP
    app = graph.compile()

    async def once() -> None:
        await app.ainvoke({"i": 0}, {"recursion_limit": steps + 10})

    return once, steps


def _bare(workload: str) -> tuple[Any, int]:
    async def step(shared: dict[str, Any]) -> None:
        shared["i"] += 1

    steps = CHAIN if workload == "chain" else LOOP

    async def once() -> None:
        shared = {"i": 0}
        for _ in range(steps):
            await step(shared)

    return once, steps


def measure(system: str, workload: str, reps: int) -> float:
    """Seconds per step, median of ``reps`` runs after one warm-up."""
    builders = {
        "bare await loop": lambda: _bare(workload),
        "pocketmesh (trace + hook)": lambda: _pocketmesh(workload, True),
        "pocketmesh (trace, no hook)": lambda: _pocketmesh(workload, False),
        "PocketFlow AsyncFlow": lambda: _pocketflow(workload),
        "LangGraph": lambda: _langgraph(workload),
    }
    once, steps = builders[system]()

    async def go() -> list[float]:
        await once()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            await once()
            times.append((time.perf_counter() - start) / steps)
        return times

    times = asyncio.run(go())
    return sorted(times)[len(times) // 2]


def run(h: Any) -> list[Any]:
    from _harness import Row, alt_python, main_python, median, run_worker, spread

    rows = []
    for workload, label in (("chain", f"{CHAIN:,}-node chain"), ("loop", f"{LOOP:,}-iteration self-loop")):
        per: dict[str, list[float]] = {s: [] for s in SYSTEMS}
        for r in range(ROUNDS):
            order = SYSTEMS[r % len(SYSTEMS):] + SYSTEMS[: r % len(SYSTEMS)]
            for system in order:
                reps = 1 if (system == "LangGraph" and workload == "loop") else 5
                if system == "LangGraph" and r >= 3:
                    continue  # ~0.5 ms/step: three rounds are plenty, and the run stays short
                python = alt_python() if system in ALT else main_python()
                per[system].append(run_worker(python, "case_overhead", system, workload, str(reps)))
        ours = median(per["pocketmesh (trace + hook)"])
        for system in SYSTEMS:
            value = median(per[system])
            low, high = spread(per[system])
            rows.append(Row(NAME, label, system, value * 1e6, "us/step", value / ours, spread=(low * 1e6, high * 1e6)))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
