"""``set_options(timeout=...)`` bounds each execution attempt; an overrun is a failure like any
other: retried, then the fallback, then the "error" edge."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow
from tests.pocketmesh.conftest import FakeClock, steps


class Slow(BaseNode):
    """Waits once per attempt (an overrunning deadline interrupts the wait), then answers."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        shared.setdefault("attempts", []).append(attempt)
        await asyncio.sleep(0)
        return f"answer on attempt {attempt}"

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["result"] = result


async def test_an_overrun_attempt_is_retried(fake_clock: FakeClock) -> None:
    fake_clock.overruns = [True, True, False]
    node = Slow().set_options(max_retries=3, wait_seconds=0.5, timeout=2)
    result = await Flow(node).run()
    assert result.status == "completed"
    assert result.shared == {"attempts": [0, 1, 2], "result": "answer on attempt 2"}
    assert fake_clock.deadlines == [2, 2, 2]
    assert fake_clock.waits == [0.5, 0.5]


async def test_a_timeout_retried_then_failed(fake_clock: FakeClock) -> None:
    fake_clock.overruns = [True, True]
    result = await Flow(Slow().set_options(max_retries=2, timeout=1.5)).run()
    assert result.status == "failed"
    assert result.shared["attempts"] == [0, 1]
    assert isinstance(result.error, TimeoutError)
    assert str(result.error) == (
        "Slow.execute() attempt 2 of 2 took longer than timeout=1.5s; make the work faster, "
        "or raise the node's set_options(timeout=...)."
    )


async def test_a_timeout_goes_to_the_fallback_then_the_error_edge(fake_clock: FakeClock) -> None:
    class WithFallback(Slow):
        async def execute_fallback(self, prep, error, shared, params, attempt):  # type: ignore[override]
            shared["fallback_saw"] = type(error).__name__
            raise error

    class Handle(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["handled"] = shared["__error"]["type"]

    fake_clock.overruns = [True]
    node = WithFallback().set_options(timeout=3)
    node - "error" >> Handle()
    result = await Flow(node).run()
    assert result.status == "completed"
    assert result.shared["fallback_saw"] == "TimeoutError"
    assert result.shared["handled"] == "TimeoutError"
    assert steps(result) == [("WithFallback", "error"), ("Handle", "default")]


async def test_a_node_within_its_deadline_is_unaffected(fake_clock: FakeClock) -> None:
    result = await Flow(Slow().set_options(timeout=5)).run()
    assert result.shared == {"attempts": [0], "result": "answer on attempt 0"}
    assert fake_clock.deadlines == [5]


async def test_a_real_deadline_interrupts_a_node_that_never_finishes() -> None:
    never = asyncio.Event()

    class Hangs(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            shared.setdefault("attempts", []).append(attempt)
            await never.wait()

    # The outer bound only keeps a broken deadline from hanging the suite.
    result = await asyncio.wait_for(Flow(Hangs().set_options(max_retries=2, timeout=0.02)).run(), 10)
    assert result.status == "failed" and isinstance(result.error, TimeoutError)
    assert result.shared["attempts"] == [0, 1]


async def test_a_synchronous_attempt_is_abandoned_to_its_thread(fake_clock: FakeClock) -> None:
    release = threading.Event()

    class Blocks(BaseNode):
        def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            release.wait(timeout=10)
            return "too late"

    fake_clock.overruns = [True]
    try:
        result = await Flow(Blocks().set_options(timeout=1)).run()
    finally:
        release.set()
    assert result.status == "failed" and isinstance(result.error, TimeoutError)


async def test_batch_items_are_bounded_one_by_one(fake_clock: FakeClock) -> None:
    class Items(BaseNode):
        async def prepare(self, shared, params):  # type: ignore[override]
            return [1, 2, 3]

        async def execute_item(self, item, shared, params, attempt):  # type: ignore[override]
            await asyncio.sleep(0)
            return item * 10

        async def execute_item_fallback(self, item, error, shared, params, attempt):  # type: ignore[override]
            return type(error).__name__

        async def finalize(self, shared, prep, results, params):  # type: ignore[override]
            shared["results"] = results

    fake_clock.overruns = [False, True, False]
    result = await Flow(Items().set_options(timeout=1)).run()
    assert result.shared["results"] == [10, "TimeoutError", 30]


async def test_a_timeout_error_raised_by_the_node_itself_is_its_own() -> None:
    class Raises(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            raise TimeoutError("upstream said so")

    result = await Flow(Raises().set_options(timeout=10)).run()
    assert str(result.error) == "upstream said so"


@pytest.mark.parametrize("bad", [0, -1, "5", True, float("inf"), float("nan")])
def test_a_bad_timeout_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="timeout must be None or a number of seconds > 0"):
        Slow().set_options(timeout=bad)
