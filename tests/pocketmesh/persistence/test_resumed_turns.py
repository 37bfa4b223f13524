"""What a resume carries on every backend: the params it is given, and a fresh step budget."""

from __future__ import annotations

from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, FlowStepper, Persistence, StepLimitError, load_run_record


class Seen(BaseNode):
    """Notes its node id and the ``tone`` param it ran with; pauses when told to."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> None:
        shared.setdefault("seen", []).append([self.name, params.get("tone")])

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> Any:
        return "input-required" if self.name == "Ask" else None


def ask_then_answer() -> Flow:
    ask, answer, close = Seen(name="Ask"), Seen(name="Answer"), Seen(name="Close")
    ask - "input-required" >> answer
    answer >> close
    return Flow(ask)


async def test_params_given_on_resume_reach_the_nodes_after_the_pause_and_the_record(backend: Persistence) -> None:
    flow = ask_then_answer()
    paused = await flow.run({}, params={"tone": "formal"}, run_id="p", persistence=backend)
    assert paused.status == "input-required"
    record = await load_run_record(backend, "p")
    assert record is not None and record.params == {"tone": "formal"}

    resumed = await flow.run(paused.shared, params={"tone": "casual"}, run_id="p", persistence=backend)
    assert resumed.status == "completed"
    assert resumed.shared["seen"] == [["Ask", "formal"], ["Answer", "casual"], ["Close", "casual"]]
    record = await load_run_record(backend, "p")
    assert record is not None and record.params == {"tone": "casual"}
    assert record.shared["seen"][-1] == ["Close", "casual"]


async def test_a_resume_without_params_keeps_the_saved_ones(backend: Persistence) -> None:
    flow = ask_then_answer()
    paused = await flow.run({}, params={"tone": "formal"}, run_id="q", persistence=backend)
    resumed = await flow.run(paused.shared, run_id="q", persistence=backend)
    assert resumed.shared["seen"][1:] == [["Answer", "formal"], ["Close", "formal"]]


async def test_a_stepper_resumed_with_params_uses_them_after_the_pause(backend: Persistence) -> None:
    paused = await ask_then_answer().run({}, params={"tone": "formal"}, run_id="s", persistence=backend)
    stepper = FlowStepper(ask_then_answer(), persistence=backend, run_id="s", shared=paused.shared,
                          params={"tone": "casual"})
    step = await stepper.step()
    assert (step.node, step.done) == ("Answer", False)
    assert stepper.shared is not None and stepper.shared["seen"][-1] == ["Answer", "casual"]
    record = await load_run_record(backend, "s")
    assert record is not None and record.params == {"tone": "casual"}


# -- the step budget -----------------------------------------------------------------------------


class Turn(BaseNode):
    """Loops on itself for ``LOOPS`` steps per user message, then asks for the next one."""

    LOOPS = 4

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared["steps"] = shared.get("steps", 0) + 1
        if shared["steps"] % self.LOOPS:
            return "again"
        return "done" if shared.get("input") == "bye" else "input-required"


def chatty(max_steps: int) -> Flow:
    turn = Turn()
    turn - "again" >> turn
    turn - "done" >> BaseNode(name="End")
    return Flow(turn, max_steps=max_steps)


async def test_the_step_budget_counts_from_the_last_user_input(backend: Persistence) -> None:
    flow = chatty(max_steps=Turn.LOOPS + 1)  # each turn fits, all of them together do not
    result = await flow.run({}, run_id="chat", persistence=backend)
    for text in ("one", "two", "bye"):
        assert result.status == "input-required", result.error
        result = await flow.run({**result.shared, "input": text}, run_id="chat", persistence=backend)
    assert result.status == "completed", result.error
    assert result.shared["steps"] == 4 * Turn.LOOPS
    assert len(result.trace) == 4 * Turn.LOOPS + 1 > flow.max_steps


async def test_a_stepper_gets_a_fresh_step_budget_after_each_input(backend: Persistence) -> None:
    stepper = FlowStepper(chatty(max_steps=Turn.LOOPS + 1), persistence=backend, shared={})
    for text in ("one", "two", "bye"):
        while not (await stepper.step()).paused:
            pass
        stepper.shared = {**(stepper.shared or {}), "input": text}
    while not (await stepper.step()).done:
        pass
    assert stepper.status == "completed"
    assert stepper.shared is not None and stepper.shared["steps"] == 4 * Turn.LOOPS


async def test_one_turn_over_the_budget_still_hits_the_limit(backend: Persistence) -> None:
    result = await chatty(max_steps=Turn.LOOPS - 1).run({}, run_id="long", persistence=backend)
    assert result.status == "failed"
    assert "max_steps=3" in str(result.error)


async def test_a_stepper_on_a_store_counts_its_steps_across_loads_and_hits_the_limit(backend: Persistence) -> None:
    # Each step loads the run afresh: the count since the last input must come back with it.
    stepper = FlowStepper(chatty(max_steps=Turn.LOOPS - 1), persistence=backend, shared={})
    ran = 0
    with pytest.raises(StepLimitError, match="max_steps=3"):
        for _ in range(3 * Turn.LOOPS):
            await stepper.step()
            ran += 1
    assert ran == Turn.LOOPS - 1
    record = await load_run_record(backend, stepper.run_id)
    assert record is not None and record.status == "failed"
