"""The seed document's examples (sections 1, 4, 5 and 6), in Python, with plain functions
standing in for the LLM and the A2A server."""

from __future__ import annotations

import random
from typing import Any

from pocketmesh import BaseNode, Flow, InMemoryPersistence
from tests.pocketmesh.conftest import FakeClock, steps

# -- section 1: the conversational greeting flow's shape -------------------------------------


def latest_text(shared: dict[str, Any]) -> str:
    return str(shared.get("incoming", ""))


class GreetNode(BaseNode):
    async def prepare(self, shared, params):  # type: ignore[override]
        if not shared.get("history"):
            shared["userName"] = latest_text(shared)
            return "initial-greeting"
        return "follow-up"

    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        return f"Hello, {shared.get('userName', 'User')}! What's on your mind?"

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared.setdefault("history", []).append(result)
        shared["reply"] = result
        return "input-required"


class FollowUpNode(BaseNode):
    async def prepare(self, shared, params):  # type: ignore[override]
        return latest_text(shared)

    async def execute(self, user_input, shared, params, attempt):  # type: ignore[override]
        return f'Got it: "{user_input}". Anything else?'

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["history"].append(result)
        shared["reply"] = result
        return "input-required"


def conversation_flow() -> Flow:
    greet, follow_up = GreetNode(), FollowUpNode()
    greet.connect_action("initial-greeting", follow_up)
    greet.connect_action("input-required", follow_up)
    follow_up.connect_action("follow-up", follow_up)
    return Flow(greet)


async def test_greeting_flow_pauses_each_turn_and_resumes() -> None:
    flow, store = conversation_flow(), InMemoryPersistence()
    first = await flow.run({"incoming": "Ada"}, run_id="conv", persistence=store)
    assert first.status == "input-required"
    assert first.shared["reply"] == "Hello, Ada! What's on your mind?"

    second = await flow.run({**first.shared, "incoming": "tea"}, run_id="conv", persistence=store)
    assert second.status == "input-required"
    assert second.shared["reply"] == 'Got it: "tea". Anything else?'

    third = await flow.run({**second.shared, "incoming": "cake"}, run_id="conv", persistence=store)
    assert third.shared["history"] == [
        "Hello, Ada! What's on your mind?",
        'Got it: "tea". Anything else?',
        'Got it: "cake". Anything else?',
    ]
    assert [s for s in steps(third)] == [
        ("GreetNode", "input-required"),
        ("FollowUpNode", "input-required"),
        ("FollowUpNode", "input-required"),
    ]


# -- section 4: retry loop with max iterations ------------------------------------------------


class RetryLoopNode(BaseNode):
    def __init__(self, outcomes: list[str]) -> None:
        super().__init__()
        self.outcomes = outcomes

    async def prepare(self, shared, params):  # type: ignore[override]
        shared["iteration"] = shared.get("iteration", 0) + 1
        return shared["iteration"]

    async def execute(self, iteration, shared, params, attempt):  # type: ignore[override]
        if iteration > params["maxIterations"]:
            raise RuntimeError("Max iterations exceeded")
        return self.outcomes[(iteration - 1) % len(self.outcomes)]

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        if result == "retry-needed" and shared["iteration"] < params["maxIterations"]:
            return "loop-back"
        return "exit-loop"


class FinalNode(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["finished"] = True


def retry_flow(outcomes: list[str]) -> Flow:
    loop = RetryLoopNode(outcomes).set_params({"maxIterations": 4})
    loop.connect_action("loop-back", loop)
    loop.connect_action("exit-loop", FinalNode())
    return Flow(loop)


async def test_retry_loop_exits_on_success() -> None:
    result = await retry_flow(["retry-needed", "retry-needed", "success"]).run()
    assert result.shared == {"iteration": 3, "finished": True}
    assert steps(result)[-2:] == [("RetryLoopNode", "exit-loop"), ("FinalNode", "default")]


async def test_retry_loop_stops_at_max_iterations() -> None:
    result = await retry_flow(["retry-needed"]).run()
    assert result.shared["iteration"] == 4
    assert len(result.trace) == 5


async def test_retry_loop_with_random_outcomes_always_terminates() -> None:
    rng = random.Random(7)
    for _ in range(50):
        outcomes = [rng.choice(["success", "retry-needed"]) for _ in range(6)]
        result = await retry_flow(outcomes).run()
        assert result.status == "completed"
        assert result.shared["iteration"] <= 4


# -- section 5: global fallback and exponential backoff ---------------------------------------


class GlobalFallbackNode(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        shared["error"] = "An unexpected error occurred. Please try again."
        return shared["error"]

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["final_response"] = [{"kind": "text", "text": result}]
        return "default"


class CallsFlakyService(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        shared.setdefault("attempts", 0)
        shared["attempts"] += 1
        raise TimeoutError("service timed out")


async def test_global_fallback_catches_the_start_nodes_failure(fake_clock: FakeClock) -> None:
    start = CallsFlakyService().set_options(max_retries=3, wait_seconds=lambda attempt: 2**attempt)
    flow = Flow(start)
    flow.start_node.connect_action("error", GlobalFallbackNode())
    result = await flow.run()
    assert result.status == "completed"
    assert result.shared["attempts"] == 3
    assert fake_clock.waits == [1, 2]
    assert result.shared["final_response"][0]["text"].startswith("An unexpected error")
    assert result.shared["__error"]["type"] == "TimeoutError"


# -- section 6: a sub-flow called from a node, and a flow used as a node ----------------------


class SubNode(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        shared["subResult"] = f"sub saw {params.get('topic')}"


class SubFlowNode(BaseNode):
    def __init__(self, sub_flow: Flow) -> None:
        super().__init__()
        self.sub_flow = sub_flow

    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        await self.sub_flow.run_lifecycle(shared, params)
        return shared["subResult"]

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["mainResult"] = result
        return "default"


async def test_subflow_node_runs_the_inner_flow_lifecycle() -> None:
    main = Flow(SubFlowNode(Flow(SubNode())))
    result = await main.run(params={"topic": "rivers"})
    assert result.shared["mainResult"] == "sub saw rivers"


async def test_flow_used_directly_as_a_node() -> None:
    sub = Flow(SubNode(), name="Research")
    sub.set_params({"topic": "lakes"})
    sub >> FinalNode()
    result = await Flow(sub).run()
    assert result.shared["subResult"] == "sub saw lakes"
    assert steps(result) == [("Research/SubNode", "default"), ("Research", "default"), ("FinalNode", "default")]
