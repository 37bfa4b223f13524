"""Resuming a paused run with new input in one call, and a stepper's view of the state it
continues with."""

from __future__ import annotations

from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, FlowStepper, InMemoryPersistence, RunFinishedError, RunNotFoundError, SQLitePersistence
from tests.pocketmesh.conftest import steps


class Ask(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["asked"] = shared.get("asked", 0) + 1
        shared["reply"] = "What is your name?"
        return "input-required"


class Greet(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["reply"] = f"Hello, {shared['input']}!"


def build() -> Flow:
    ask = Ask()
    ask - "input-required" >> Greet()
    return Flow(ask)


async def test_resume_merges_the_new_input_into_the_saved_state(tmp_path: Any) -> None:
    store = SQLitePersistence(tmp_path / "runs.sqlite")
    flow = build()
    first = await flow.run({"user": "u1"}, run_id="chat-1", persistence=store)
    assert first.status == "input-required"
    second = await build().resume("chat-1", {"input": "Ada"}, persistence=store)
    assert second.status == "completed"
    assert second.shared == {"user": "u1", "asked": 1, "input": "Ada", "reply": "Hello, Ada!"}
    assert steps(second) == [("Ask", "input-required"), ("Greet", "default")]
    await store.close()


async def test_resume_without_values_continues_with_the_saved_state() -> None:
    store = InMemoryPersistence()
    await build().run({"input": "Bo"}, run_id="r", persistence=store)
    result = await build().resume("r", persistence=store)
    assert result.shared["reply"] == "Hello, Bo!"


async def test_resume_passes_hooks_and_params() -> None:
    store = InMemoryPersistence()
    await build().run({}, run_id="r", persistence=store)
    seen: list[str] = []
    result = await build().resume(
        "r", {"input": "Cy"}, persistence=store, params={"p": 1}, on_status_update=lambda u: seen.append(u.node)
    )
    assert result.status == "completed" and seen == ["Greet", "Greet"]


async def test_resume_of_an_unknown_run_names_it() -> None:
    with pytest.raises(RunNotFoundError, match="no run 'nope'"):
        await build().resume("nope", {"input": "x"}, persistence=InMemoryPersistence())


async def test_resume_of_a_finished_run_says_how_it_ended() -> None:
    store = InMemoryPersistence()
    await build().run({}, run_id="r", persistence=store)
    await build().resume("r", {"input": "x"}, persistence=store)
    with pytest.raises(RunFinishedError, match="status 'completed'"):
        await build().resume("r", {"input": "again"}, persistence=store)


async def test_resume_refuses_values_that_are_not_a_dict() -> None:
    with pytest.raises(TypeError, match=r"resume\(\) merges a dict of new values"):
        await build().resume("r", "Ada", persistence=InMemoryPersistence())  # type: ignore[arg-type]


async def test_a_stepper_of_a_paused_run_exposes_the_state_it_continues_with(tmp_path: Any) -> None:
    store = SQLitePersistence(tmp_path / "runs.sqlite")
    await build().run({"user": "u1"}, run_id="chat", persistence=store)
    stepper = FlowStepper(build(), persistence=store, run_id="chat")
    assert stepper.shared is None
    state = await stepper.load()
    assert state is stepper.shared
    assert state == {"user": "u1", "asked": 1, "reply": "What is your name?"}
    assert stepper.status == "input-required"
    stepper.shared["input"] = "Di"  # type: ignore[index]
    step = await stepper.step()
    assert (step.node, step.action, step.done) == ("Greet", "default", True)
    assert stepper.shared == {"user": "u1", "asked": 1, "input": "Di", "reply": "Hello, Di!"}
    await store.close()


async def test_a_stepper_pausing_exposes_its_state_too() -> None:
    store = InMemoryPersistence()
    stepper = FlowStepper(build(), persistence=store, shared={})
    step = await stepper.step()
    assert step.paused and stepper.shared == {"asked": 1, "reply": "What is your name?"}


async def test_stepper_load_needs_a_known_run_and_a_store() -> None:
    with pytest.raises(RunNotFoundError):
        await FlowStepper(build(), persistence=InMemoryPersistence(), run_id="nope").load()
    with pytest.raises(ValueError, match="no persistence to load from"):
        await FlowStepper(build(), run_id="x").load()
