"""Retries with backoff and fallbacks; batch nodes, sequential and parallel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow
from tests.pocketmesh.conftest import FakeClock


class Flaky(BaseNode):
    """Fails the first ``fail_times`` attempts."""

    def __init__(self, fail_times: int) -> None:
        super().__init__()
        self.fail_times = fail_times

    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        shared.setdefault("attempts", []).append(attempt)
        if len(shared["attempts"]) <= self.fail_times:
            raise ConnectionError(f"attempt {attempt} failed")
        return f"ok on {attempt}"

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["result"] = result


async def test_retries_count_attempts_exactly(fake_clock: FakeClock) -> None:
    result = await Flow(Flaky(fail_times=2).set_options(max_retries=3)).run()
    assert result.shared["attempts"] == [0, 1, 2]
    assert result.shared["result"] == "ok on 2"


async def test_retries_spent_fail_the_node(fake_clock: FakeClock) -> None:
    result = await Flow(Flaky(fail_times=5).set_options(max_retries=3)).run()
    assert result.status == "failed"
    assert result.shared["attempts"] == [0, 1, 2]
    assert str(result.error) == "attempt 2 failed"


async def test_default_is_a_single_attempt(fake_clock: FakeClock) -> None:
    result = await Flow(Flaky(fail_times=1)).run()
    assert result.shared["attempts"] == [0]
    assert result.status == "failed"


async def test_backoff_waits_are_the_callables_values(fake_clock: FakeClock) -> None:
    node = Flaky(fail_times=3).set_options(max_retries=4, wait_seconds=lambda attempt: 2**attempt)
    await Flow(node).run()
    assert fake_clock.waits == [1, 2, 4]


async def test_numeric_wait_between_each_retry(fake_clock: FakeClock) -> None:
    await Flow(Flaky(fail_times=2).set_options(max_retries=3, wait_seconds=0.5)).run()
    assert fake_clock.waits == [0.5, 0.5]


async def test_fallback_replaces_the_failed_result(fake_clock: FakeClock) -> None:
    class WithFallback(Flaky):
        async def execute_fallback(self, prep, error, shared, params, attempt):  # type: ignore[override]
            return f"fallback after {attempt}: {error}"

    result = await Flow(WithFallback(fail_times=9).set_options(max_retries=2)).run()
    assert result.status == "completed"
    assert result.shared["result"] == "fallback after 1: attempt 1 failed"


async def test_a_failing_fallback_fails_the_node() -> None:
    class BadFallback(Flaky):
        async def execute_fallback(self, prep, error, shared, params, attempt):  # type: ignore[override]
            raise LookupError("fallback also broke")

    updates: list[tuple[str, str, str]] = []
    result = await Flow(BadFallback(fail_times=1)).run(
        on_status_update=lambda u: updates.append((u.node, u.state, u.message))
    )
    assert result.status == "failed"
    assert isinstance(result.error, LookupError)
    assert str(result.error) == "fallback also broke"
    assert updates[-1] == ("BadFallback", "failed", "LookupError: fallback also broke")
    assert result.shared["attempts"] == [0]
    assert "result" not in result.shared  # finalize never ran


class Squares(BaseNode):
    async def prepare(self, shared, params):  # type: ignore[override]
        return shared["items"]

    async def execute_item(self, item, shared, params, attempt):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.001 * (5 - item % 5))  # finish out of order
        return item * item

    async def finalize(self, shared, prep, results, params):  # type: ignore[override]
        shared["results"] = results


async def test_sequential_batch_keeps_order() -> None:
    result = await Flow(Squares()).run({"items": [1, 2, 3]})
    assert result.shared["results"] == [1, 4, 9]


async def test_parallel_batch_keeps_item_order() -> None:
    result = await Flow(Squares().set_options(parallel=True)).run({"items": list(range(10))})
    assert result.shared["results"] == [i * i for i in range(10)]


async def test_parallel_batch_respects_max_concurrency() -> None:
    class Gauge(Squares):
        active = 0
        peak = 0

        async def execute_item(self, item, shared, params, attempt):  # type: ignore[no-untyped-def]
            Gauge.active += 1
            Gauge.peak = max(Gauge.peak, Gauge.active)
            await asyncio.sleep(0.002)
            Gauge.active -= 1
            return item

    await Flow(Gauge().set_options(parallel=True, max_concurrency=3)).run({"items": list(range(12))})
    assert Gauge.peak == 3
    Gauge.peak = 0
    await Flow(Gauge().set_options(parallel=True)).run({"items": list(range(12))})
    assert Gauge.peak == 12


async def test_batch_accepts_async_iterables() -> None:
    class AsyncItems(Squares):
        async def prepare(self, shared, params):  # type: ignore[override]
            async def gen() -> Any:
                for i in (3, 4):
                    yield i

            return gen()

    result = await Flow(AsyncItems()).run()
    assert result.shared["results"] == [9, 16]


@pytest.mark.parametrize("prep", [None, 5, "abc", {"a": 1}])
async def test_batch_prepare_must_return_items(prep: Any) -> None:
    class Bad(Squares):
        async def prepare(self, shared, params):  # type: ignore[override]
            return prep

    with pytest.raises(TypeError, match="batch node 'Bad': prepare\\(\\) must return an iterable"):
        await Flow(Bad()).run_lifecycle({})


async def test_item_retries_and_item_fallback(fake_clock: FakeClock) -> None:
    class Items(BaseNode):
        async def prepare(self, shared, params):  # type: ignore[override]
            return ["good", "flaky", "broken"]

        async def execute_item(self, item, shared, params, attempt):  # type: ignore[no-untyped-def]
            shared.setdefault("calls", []).append((item, attempt))
            if item == "broken" or (item == "flaky" and attempt == 0):
                raise ValueError(item)
            return item.upper()

        async def execute_item_fallback(self, item, error, shared, params, attempt):  # type: ignore[no-untyped-def]
            return f"fallback({error})"

        async def finalize(self, shared, prep, results, params):  # type: ignore[override]
            shared["results"] = results

    result = await Flow(Items().set_options(max_retries=2, wait_seconds=lambda a: 10 + a)).run()
    assert result.shared["results"] == ["GOOD", "FLAKY", "fallback(broken)"]
    assert result.shared["calls"] == [("good", 0), ("flaky", 0), ("flaky", 1), ("broken", 0), ("broken", 1)]
    assert fake_clock.waits == [10, 10]


async def test_parallel_item_failure_fails_the_node_and_cancels_the_other_items() -> None:
    running = {1: asyncio.Event(), 3: asyncio.Event()}
    release = asyncio.Event()
    finished: list[int] = []
    cancelled: list[int] = []

    class Items(Squares):
        async def execute_item(self, item, shared, params, attempt):  # type: ignore[no-untyped-def]
            if item == 2:
                # Fail only once the other items are under way.
                await asyncio.gather(*(event.wait() for event in running.values()))
                raise ValueError("item 2")
            running[item].set()
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancelled.append(item)
                raise
            finished.append(item)  # only an item left running after the failure gets here
            return item

    # A node that waited for its other items instead of cancelling them would never end.
    result = await asyncio.wait_for(Flow(Items().set_options(parallel=True)).run({"items": [1, 2, 3]}), 30)
    assert result.status == "failed"
    assert isinstance(result.error, ValueError) and str(result.error) == "item 2"
    assert sorted(cancelled) == [1, 3]
    # Were the other items still running, releasing them now would let them finish.
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert finished == []
