"""FlowStepper without persistence, and inside sub-flows: what each step reports and runs on."""

from __future__ import annotations

from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, FlowStepper, InMemoryPersistence, Persistence


class Note(BaseNode):
    """Appends its node id to ``shared["seen"]``."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared.setdefault("seen", []).append(self.name)


class Ask(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared["asked"] = True
        return "input-required"


class Greet(BaseNode):
    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return str(shared["input"])

    async def finalize(self, shared: dict[str, Any], prep: str, result: Any, params: dict[str, Any]) -> None:
        shared["reply"] = f"Hello {prep}"


async def test_without_persistence_a_new_shared_assigned_after_a_pause_is_the_state_it_continues_with() -> None:
    ask, greet = Ask(), Greet()
    ask - "input-required" >> greet
    stepper = FlowStepper(Flow(ask), shared={})
    first = await stepper.step()
    assert first.paused and stepper.shared == {"asked": True}
    stepper.shared = {"input": "Ada", "fresh": 1}  # a new dict, not the paused one changed in place
    second = await stepper.step()
    assert (second.node, second.done) == ("Greet", True)
    assert stepper.shared == {"input": "Ada", "fresh": 1, "reply": "Hello Ada"}


def nested() -> Flow:
    """Before -> Sub(A -> B) -> After, and Sub's finalize picks its own action."""

    class Sub(Flow):
        async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
            return "out"

    sub = Sub(Note(name="A"), name="Sub")
    sub.start_node >> Note(name="B")
    before, after = Note(name="Before"), Note(name="After")
    before >> sub
    sub - "out" >> after
    return Flow(before)


@pytest.mark.parametrize("persistence", [None, InMemoryPersistence], ids=["none", "memory"])
async def test_inside_a_sub_flow_each_step_reports_the_qualified_leaf_that_ran(persistence: Any) -> None:
    store: Persistence | None = persistence() if persistence else None
    stepper = FlowStepper(nested(), persistence=store, shared={})
    steps = []
    while True:
        step = await stepper.step()
        steps.append((step.node, step.action, step.done))
        if step.done:
            break
    assert steps == [
        ("Before", "default", False),
        ("Sub/A", "default", False),
        ("Sub/B", "default", False),  # the step that also ends the sub-flow
        ("After", "default", True),
    ]
    assert stepper.shared == {"seen": ["Before", "A", "B", "After"]}
