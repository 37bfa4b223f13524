"""Synchronous lifecycle methods run in worker threads: a blocking node never stalls the loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from pocketmesh import BaseNode, Flow


class WaitsForTheLoop(BaseNode):
    """Blocks its thread until the event loop, still free, lets it go."""

    def __init__(self, started: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.started, self.release = started, release

    def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
        self.started.set()
        released = self.release.wait(timeout=10)
        shared["thread"] = threading.current_thread().name
        return released

    def finalize(self, shared: dict[str, Any], prep: Any, released: Any, params: dict[str, Any]) -> None:
        shared["released"] = released


async def test_the_loop_keeps_running_while_a_sync_node_blocks() -> None:
    started, release = threading.Event(), threading.Event()
    run = asyncio.ensure_future(Flow(WaitsForTheLoop(started, release)).run({}))
    ticks = 0
    # Only a loop that keeps turning while the node blocks can see it start and let it go;
    # a node run on the loop itself would hold the loop until its wait timed out.
    while not started.is_set():
        ticks += 1
        await asyncio.sleep(0.001)
    release.set()
    result = await run
    assert result.status == "completed"
    assert result.shared["released"] is True
    assert result.shared["thread"].startswith("pocketmesh-sync")
    assert ticks >= 1


class MeetsTheOthers(BaseNode):
    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self.barrier = barrier

    def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
        return self.barrier.wait(timeout=10)  # BrokenBarrierError unless all runs block at once


async def test_fifty_runs_of_a_blocking_sync_node_block_at_the_same_time() -> None:
    barrier = threading.Barrier(50)
    flow = Flow(MeetsTheOthers(barrier))
    results = await asyncio.gather(*(flow.run({}) for _ in range(50)))
    assert [r.status for r in results] == ["completed"] * 50, [r.error for r in results if r.error]


class SyncEmitter(BaseNode):
    def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> Any:
        self.emit_artifact({"artifactId": "a", "parts": [{"kind": "text", "text": "first"}]})
        return "prepared"

    def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        self.emit_artifact({"artifactId": "a", "parts": [{"kind": "text", "text": "second"}]})
        shared["prep"] = prep


async def test_a_sync_node_emits_artifacts_in_order_to_an_async_hook() -> None:
    seen: list[str] = []

    async def hook(artifact: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(artifact["parts"][0]["text"])

    result = await Flow(SyncEmitter()).run({}, on_artifact=hook)
    assert result.status == "completed", result.error
    assert seen == ["first", "second"]
    assert result.shared["prep"] == "prepared"


class SyncBatch(BaseNode):
    def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> Any:
        return range(4)

    def execute_item(self, item: int, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
        return shared["barrier"].wait(timeout=10)

    def finalize(self, shared: dict[str, Any], prep: Any, results: Any, params: dict[str, Any]) -> None:
        shared["arrivals"] = sorted(results)


async def test_parallel_sync_batch_items_run_at_the_same_time() -> None:
    node = SyncBatch().set_options(parallel=True)
    shared: dict[str, Any] = {"barrier": threading.Barrier(4)}
    result = await Flow(node).run(shared)
    assert result.status == "completed", result.error
    assert result.shared["arrivals"] == [0, 1, 2, 3]
