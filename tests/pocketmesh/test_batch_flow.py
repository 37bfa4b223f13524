"""BatchFlow: one pass of the graph per param set, in order or in parallel, with the set's
params on top; pauses inside passes; per-set and per-item status updates; Flow.execute."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pocketmesh import (
    BaseNode,
    BatchFlow,
    Flow,
    FlowNotExecutableError,
    InMemoryPersistence,
    PocketMeshError,
    StatusUpdate,
)
from pocketmesh.errors import BatchItemsError
from tests.pocketmesh.backends import PassThrough
from tests.pocketmesh.conftest import steps


class Record(BaseNode):
    """Appends (its name, the params it saw) to ``shared["seen"]``."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared.setdefault("seen", []).append((self.name, dict(params)))


class Files(BatchFlow):
    """One pass per file name in ``params["files"]`` (or a, b, c)."""

    async def prepare(self, shared, params):  # type: ignore[override]
        return [{"file": name} for name in params.get("files", ("a", "b", "c"))]


def two_step_pass() -> BaseNode:
    read, write = Record(name="Read"), Record(name="Write")
    read >> write
    return read


async def test_sets_run_in_order_each_through_the_whole_graph() -> None:
    result = await Files(two_step_pass()).run({})
    assert result.status == "completed"
    assert [(name, p["file"]) for name, p in result.shared["seen"]] == [
        ("Read", "a"), ("Write", "a"), ("Read", "b"), ("Write", "b"), ("Read", "c"), ("Write", "c"),
    ]
    assert steps(result) == [("Read", "default"), ("Write", "default")] * 3


async def test_set_params_win_over_the_flows_the_nodes_and_the_runs() -> None:
    inner = Record(name="Inner").set_params({"file": "node-default", "node_only": 1})
    batch = Files(inner).set_params({"file": "flow-default", "flow_only": 2})
    result = await batch.run({}, params={"file": "run-param", "run_only": 3, "files": ["x", "y"]})
    assert [p for _, p in result.shared["seen"]] == [
        {"file": "x", "flow_only": 2, "node_only": 1, "run_only": 3, "files": ["x", "y"]},
        {"file": "y", "flow_only": 2, "node_only": 1, "run_only": 3, "files": ["x", "y"]},
    ]


async def test_a_batch_flow_nested_in_a_flow_and_a_sub_flow_in_a_pass() -> None:
    sub = Flow(Record(name="Deep"), name="Sub")
    batch = Files(sub, name="Batch").set_params({"level": "batch"})
    start, end = Record(name="Start"), Record(name="End")
    start >> batch >> end
    flow = Flow(start).set_params({"level": "top", "top_only": True})
    result = await flow.run({}, params={"files": ["p", "q"]})
    assert [(n, p["file"] if "file" in p else None, p["level"]) for n, p in result.shared["seen"]] == [
        ("Start", None, "top"), ("Deep", "p", "batch"), ("Deep", "q", "batch"), ("End", None, "top"),
    ]
    assert all(p["top_only"] for _, p in result.shared["seen"])
    assert steps(result) == [
        ("Start", "default"), ("Batch/Sub/Deep", "default"), ("Batch/Sub", "default"),
        ("Batch/Sub/Deep", "default"), ("Batch/Sub", "default"), ("Batch", "default"), ("End", "default"),
    ]


async def test_prepare_may_return_a_generator_or_an_async_iterable() -> None:
    class Gen(BatchFlow):
        async def prepare(self, shared, params):  # type: ignore[override]
            return ({"n": n} for n in range(3))

    class AsyncGen(BatchFlow):
        async def prepare(self, shared, params):  # type: ignore[override]
            async def sets():
                for n in range(2):
                    yield {"n": n}
            return sets()

    assert [p["n"] for _, p in (await Gen(Record()).run({})).shared["seen"]] == [0, 1, 2]
    assert [p["n"] for _, p in (await AsyncGen(Record()).run({})).shared["seen"]] == [0, 1]


async def test_finalize_sees_the_sets_and_each_passes_last_action() -> None:
    class Decide(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            return "keep" if params["file"] != "b" else "drop"

    class Summary(Files):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["summary"] = {"sets": prep, "last": result}
            return "summarized"

    batch = Summary(Decide())
    batch - "summarized" >> Record(name="After")
    result = await Flow(batch).run({})
    assert result.shared["summary"] == {
        "sets": [{"file": "a"}, {"file": "b"}, {"file": "c"}], "last": ["keep", "drop", "keep"],
    }
    assert steps(result)[-2:] == [("Summary", "summarized"), ("After", "default")]
    # Without its own finalize a batch returns "default", whatever its passes returned.
    assert (await Files(Decide()).run({})).action == "default"


@pytest.mark.parametrize("prep", [{"file": "a"}, "abc", 42, [{"file": "a"}, "b"], [{1: "x"}]])
async def test_prepare_must_return_param_dicts(prep: Any) -> None:
    class Bad(BatchFlow):
        async def prepare(self, shared, params):  # type: ignore[override]
            return prep

    result = await Bad(Record()).run({})
    assert result.status == "failed"
    assert isinstance(result.error, BatchItemsError) and isinstance(result.error, TypeError)
    assert "BatchFlow 'Bad'" in str(result.error) and "param" in str(result.error)


async def test_no_sets_means_no_pass() -> None:
    result = await BatchFlow(Record()).run({})
    assert result.status == "completed" and "seen" not in result.shared


# -- parallel ----------------------------------------------------------------------------


class Tracked(BaseNode):
    """Counts the passes inside it at once; the peak is the concurrency reached."""

    def __init__(self, gauge: dict[str, int]) -> None:
        super().__init__(name="Tracked")
        self.gauge = gauge

    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        self.gauge["active"] += 1
        self.gauge["peak"] = max(self.gauge["peak"], self.gauge["active"])
        for _ in range(20):  # let every pass that may start, start
            await asyncio.sleep(0)
        self.gauge["active"] -= 1

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared.setdefault("done", []).append(params["n"])


class Numbers(BatchFlow):
    async def prepare(self, shared, params):  # type: ignore[override]
        return [{"n": n} for n in range(7)]


@pytest.mark.parametrize(("options", "peak"), [
    ({"parallel": True, "max_concurrency": 3}, 3),
    ({"parallel": True}, 7),
    ({}, 1),
])
async def test_parallel_passes_stay_within_max_concurrency(options: dict[str, Any], peak: int) -> None:
    gauge = {"active": 0, "peak": 0}
    result = await Numbers(Tracked(gauge)).set_options(**options).run({})
    assert result.status == "completed"
    assert gauge["peak"] == peak
    assert sorted(result.shared["done"]) == list(range(7))


async def test_parallel_results_come_back_in_set_order() -> None:
    finished: list[int] = []
    released = {n: asyncio.Event() for n in range(4)}

    class LastFirst(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            n = params["n"]
            if n < 3:
                await released[n + 1].wait()  # each set waits for the next one to finish
            finished.append(n)
            released[n].set()

        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            return f"done-{params['n']}"

    class Four(BatchFlow):
        async def prepare(self, shared, params):  # type: ignore[override]
            return [{"n": n} for n in range(4)]

        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["last"] = result

    result = await Four(LastFirst()).set_options(parallel=True).run({})
    assert finished == [3, 2, 1, 0]
    assert result.shared["last"] == ["done-0", "done-1", "done-2", "done-3"]


async def test_a_failing_parallel_pass_stops_the_others_and_takes_the_error_edge() -> None:
    started: list[int] = []
    cancelled: list[int] = []
    never = asyncio.Event()

    class Work(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            started.append(params["n"])
            if params["n"] == 2:
                raise ValueError("set 2 broke")
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.append(params["n"])
                raise

    batch = Numbers(Work()).set_options(parallel=True, max_concurrency=3)
    handler = Record(name="Handler")
    batch - "error" >> handler
    result = await Flow(batch).run({})
    assert result.status == "completed"
    assert started == [0, 1, 2] and sorted(cancelled) == [0, 1]
    assert result.shared["__error"] == {"node": "Numbers/Work", "type": "ValueError", "message": "set 2 broke"}
    assert steps(result)[-2:] == [("Numbers", "error"), ("Handler", "default")]


# -- pauses --------------------------------------------------------------------------------


class Ask(BaseNode):
    """Pauses the pass of a file until ``shared["answers"]`` has one for it."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared.setdefault("asked", []).append(params["file"])
        if params["file"] in params.get("ask", ()) and params["file"] not in shared.get("answers", {}):
            return "input-required"
        shared.setdefault("answered", []).append(params["file"])


def ask_pass() -> BaseNode:
    ask = Ask()
    ask - "input-required" >> Record(name="Resumed")
    return ask


@pytest.mark.parametrize(("parallel", "paused", "answered"), [
    (False, ["b"], ["a", "c", "d"]),    # in order: the pause at b holds c and d back until resumed
    (True, ["b", "c"], ["a", "d"]),     # in parallel: every set started, b and c both paused
])
async def test_a_pause_inside_a_pass_pauses_the_run_and_resumes_in_that_pass(
    parallel: bool, paused: list[str], answered: list[str]
) -> None:
    store = InMemoryPersistence()
    flow = Files(ask_pass()).set_options(parallel=parallel)
    params = {"files": ["a", "b", "c", "d"], "ask": ["b", "c"]}
    first = await flow.run({}, params=params, run_id="r", persistence=store)
    assert first.status == "input-required"
    assert sorted(set(first.shared["asked"]) - set(first.shared["answered"])) == paused
    second = await flow.run({**first.shared, "answers": {"b": 1, "c": 2}}, params=params,
                            run_id="r", persistence=store)
    assert second.status == "completed"
    # Every set was asked once: the paused ones resumed at the successor, none ran twice.
    assert sorted(second.shared["asked"]) == ["a", "b", "c", "d"]
    assert sorted(second.shared["answered"]) == answered
    assert sorted(p["file"] for name, p in second.shared["seen"] if name == "Resumed") == paused


# -- status updates --------------------------------------------------------------------------


class Squares(BaseNode):
    async def prepare(self, shared, params):  # type: ignore[override]
        return [1, 2, 3]

    async def execute_item(self, item, shared, params, attempt):  # type: ignore[no-untyped-def]
        return item * item


@pytest.mark.parametrize("parallel", [False, True])
async def test_a_batch_node_sends_a_status_update_per_item(parallel: bool) -> None:
    updates: list[StatusUpdate] = []
    node = Squares().set_options(parallel=parallel, max_concurrency=2)
    await Flow(Flow(node, name="Sub")).run({}, on_status_update=updates.append)
    items = [u for u in updates if u.item is not None]
    assert sorted((u.item, u.message) for u in items) == [
        (0, "Sub/Squares: item 1 of 3: 1"),
        (1, "Sub/Squares: item 2 of 3: 2"),
        (2, "Sub/Squares: item 3 of 3: 3"),
    ]
    assert {(u.node, u.state) for u in items} == {("Sub/Squares", "working")}
    working = [u.node for u in updates if u.state == "working"]
    assert working.index("Sub/Squares") < working.index("Sub/Squares", 1)  # node first, then items


async def test_a_batch_flow_sends_a_status_update_per_set_naming_it() -> None:
    updates: list[StatusUpdate] = []
    start = Record(name="Start")
    start >> Files(Record(name="Inner"), name="Batch")
    await Flow(start).run({}, params={"files": ["x.txt", "y.txt"]}, on_status_update=updates.append)
    assert [(u.node, u.state, u.item, u.message) for u in updates if u.item is not None] == [
        ("Batch", "working", 0, "Batch: item 1 of 2: {'file': 'x.txt'}"),
        ("Batch", "working", 1, "Batch: item 2 of 2: {'file': 'y.txt'}"),
    ]
    order = [(u.node, u.item) for u in updates if u.state == "working"]
    assert order == [("Start", None), ("Batch", 0), ("Batch/Inner", None), ("Batch", 1), ("Batch/Inner", None)]


async def test_long_items_are_cut_in_the_message() -> None:
    class Long(Squares):
        async def prepare(self, shared, params):  # type: ignore[override]
            return ["x" * 500]

        async def execute_item(self, item, shared, params, attempt):  # type: ignore[no-untyped-def]
            return item

    updates: list[StatusUpdate] = []
    await Flow(Long()).run({}, on_status_update=updates.append)
    (item,) = [u for u in updates if u.item is not None]
    assert item.message.startswith("Long: item 1 of 1: 'xxx") and item.message.endswith("...")
    assert len(item.message) < 120


# -- Flow.execute ----------------------------------------------------------------------------


async def test_flow_execute_called_directly_says_how_to_run_a_flow() -> None:
    flow = Flow(Record(), name="Checkout")
    with pytest.raises(FlowNotExecutableError) as info:
        await flow.execute(None, {}, {}, 0)
    message = str(info.value)
    assert "'Checkout' is not executed directly" in message
    assert "await flow.run(shared, params)" in message and "run_lifecycle" in message
    assert isinstance(info.value, PocketMeshError) and isinstance(info.value, TypeError)
    with pytest.raises(FlowNotExecutableError):
        await Files(Record()).execute(None, {}, {}, 0)
    # Running it the ways the message names works, nested or not.
    assert (await flow.run({})).status == "completed"
    assert await Flow(flow).run_lifecycle({}) == "default"


async def test_parallel_passes_never_save_at_the_same_time() -> None:
    """A backend need not cope with two saves of one run at once: they come one by one."""

    class Watching(PassThrough):
        """A user backend (the five methods only) that notes overlapping saves."""

        def __init__(self) -> None:
            super().__init__(InMemoryPersistence())
            self.active = self.peak = self.saves = 0

        async def save_run(self, run_id: str, state: Any, params: Any) -> None:
            self.active += 1
            self.saves += 1
            self.peak = max(self.peak, self.active)
            for _ in range(3):
                await asyncio.sleep(0)
            await self.inner.save_run(run_id, state, params)
            self.active -= 1

    store = Watching()
    gauge = {"active": 0, "peak": 0}
    result = await Numbers(Tracked(gauge)).set_options(parallel=True, max_concurrency=4).run(
        {}, run_id="p", persistence=store)
    assert result.status == "completed" and gauge["peak"] == 4
    assert store.saves > 7 and store.peak == 1


async def test_passes_are_bounded_by_the_batch_and_count_as_one_step_around_it() -> None:
    class Many(BatchFlow):
        async def prepare(self, shared, params):  # type: ignore[override]
            return [{"n": n} for n in range(30)]

    batch = Many(Record(name="Work"), max_steps=2)
    start = Record(name="Start")
    start >> batch >> Record(name="End")
    # 30 passes in a flow allowing 5 steps: the batch is one of them.
    result = await Flow(start, max_steps=5).run({})
    assert result.status == "completed" and len(result.shared["seen"]) == 32

    class Looping(Record):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["spins"] = shared.get("spins", 0) + 1
            if shared["spins"] > 100:  # the guard failed: stop here rather than spin forever
                raise RuntimeError("no loop guard inside the pass")
            return "again"

    looping = Looping(name="Spin")
    looping - "again" >> looping
    failed = await Flow(Many(looping, max_steps=4, name="Spinner")).run({})
    assert failed.status == "failed" and "max_steps=4" in str(failed.error)
    assert "Spin -> Spin" in str(failed.error)
