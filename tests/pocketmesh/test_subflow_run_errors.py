"""Run-level errors inside a sub-flow end the run: they never take the sub-flow's "error" edge.

A node failure inside a sub-flow is the sub-flow's failure, and its "error" successor handles
it. The loop guard, an unwired action and a state that cannot be saved are not node failures:
routing them to a handler would hide a broken flow (or lose the state) behind a normal ending.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from pocketmesh import (
    BaseNode,
    Flow,
    InMemoryPersistence,
    PersistenceError,
    StepLimitError,
    UnknownActionError,
)
from tests.pocketmesh.backends import PassThrough


class Handler(BaseNode):
    """Marks that the "error" edge was taken."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["handled"] = True


class Loop(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        return "again"


class Sideways(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        return "sideways"


class Unsaveable(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["when"] = datetime.date(2026, 1, 2)


def guarded(inner: BaseNode) -> Flow:
    """``inner`` in a sub-flow "Sub" whose "error" edge goes to a handler, inside a flow."""
    sub = Flow(inner, name="Sub", max_steps=5)
    sub - "error" >> Handler()
    sub >> BaseNode(name="After")
    return Flow(sub)


async def test_the_loop_guard_inside_a_sub_flow_fails_the_run() -> None:
    loop = Loop()
    loop - "again" >> loop
    flow = guarded(loop)
    result = await flow.run({})
    assert result.status == "failed"
    assert isinstance(result.error, StepLimitError) and "max_steps=5" in str(result.error)
    assert "handled" not in result.shared and "__error" not in result.shared
    with pytest.raises(StepLimitError):
        await flow.run_lifecycle({})


async def test_an_unwired_action_inside_a_sub_flow_fails_the_run() -> None:
    node = Sideways()
    node - "left" >> BaseNode(name="Left")
    flow = guarded(node)
    result = await flow.run({})
    assert result.status == "failed"
    assert isinstance(result.error, UnknownActionError) and "'sideways'" in str(result.error)
    assert "handled" not in result.shared and "__error" not in result.shared
    with pytest.raises(UnknownActionError):
        await flow.run_lifecycle({})


class FailingSave(PassThrough):
    """A five-method backend whose first ``save_run`` fails (a database hiccup), then saves."""

    def __init__(self) -> None:
        super().__init__(InMemoryPersistence())
        self.refused = False

    async def save_run(self, run_id: str, state: Any, params: Any) -> None:
        if not self.refused:
            self.refused = True
            raise OSError("disk I/O error")
        await self.inner.save_run(run_id, state, params)


async def test_a_failed_save_inside_a_sub_flow_fails_the_run() -> None:
    handled: list[str] = []

    class Watch(Handler):
        async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> None:
            handled.append("handler ran")

    store = FailingSave()
    sub = Flow(BaseNode(name="Inner"), name="Sub")
    sub - "error" >> Watch()
    with pytest.raises(PersistenceError, match="disk I/O error"):
        await Flow(sub).run({}, run_id="r", persistence=store)
    assert handled == [] and store.refused


async def test_a_state_that_cannot_be_saved_inside_a_sub_flow_fails_the_run() -> None:
    store = InMemoryPersistence()
    with pytest.raises(PersistenceError, match=r"shared\['when'\]"):
        await guarded(Unsaveable()).run({}, run_id="r", persistence=store)
    assert await store.list_runs() == []


async def test_a_node_failure_inside_the_sub_flow_still_takes_its_error_edge() -> None:
    class Boom(BaseNode):
        async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
            raise ValueError("boom")

    result = await guarded(Boom()).run({})
    assert result.status == "completed"
    assert result.shared["handled"] is True
    assert result.shared["__error"] == {"node": "Sub/Boom", "type": "ValueError", "message": "boom"}
