"""Running flows: lifecycle, params, routing, reserved actions, sub-flows, the loop guard."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, StepLimitError, UnknownActionError
from tests.pocketmesh.conftest import steps


class Recorder(BaseNode):
    """Logs each lifecycle call into shared["log"] and returns params["action"]."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> Any:
        shared.setdefault("log", []).append(f"{self.name}.prepare")
        return "prep"

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
        shared["log"].append(f"{self.name}.execute({prep},{attempt})")
        return "result"

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> Any:
        shared["log"].append(f"{self.name}.finalize({prep},{result})")
        return params.get("action")


async def test_lifecycle_runs_in_order_and_mutates_shared() -> None:
    shared: dict[str, Any] = {}
    action = await Flow(Recorder()).run_lifecycle(shared)
    assert action == "default"
    assert shared["log"] == [
        "Recorder.prepare",
        "Recorder.execute(prep,0)",
        "Recorder.finalize(prep,result)",
    ]


async def test_sync_lifecycle_methods_are_accepted() -> None:
    class Sync(BaseNode):
        def prepare(self, shared, params):  # type: ignore[override]
            return 2

        def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            return prep * 10

        def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["out"] = result
            return "done"

    result = await Flow(Sync()).run()
    assert result.status == "completed"
    assert result.shared == {"out": 20}
    assert result.action == "done"


async def test_params_merge_flow_then_node_then_run() -> None:
    seen: list[dict[str, Any]] = []

    class Peek(BaseNode):
        async def prepare(self, shared, params):  # type: ignore[override]
            seen.append(dict(params))

    node = Peek().set_params({"node": "n", "shared_key": "node", "both": "node"})
    flow = Flow(node)
    flow.set_params({"flow": "f", "shared_key": "flow", "run_key": "flow", "both": "flow"})
    await flow.run(params={"run_key": "run", "both": "run"})
    assert seen == [{"flow": "f", "shared_key": "node", "node": "n", "run_key": "run", "both": "run"}]
    seen.clear()
    await flow.run_lifecycle({}, params={"both": "run"})
    assert seen[0]["both"] == "run"


async def test_a_flows_own_prepare_and_finalize_take_the_run_params_over_its_own() -> None:
    seen: list[tuple[str, Any]] = []

    class Peeking(Flow):
        async def prepare(self, shared, params):  # type: ignore[override]
            seen.append((f"{self.name}.prepare", params.get("both")))

        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            seen.append((f"{self.name}.finalize", params.get("both")))

    inner = Peeking(BaseNode(name="Leaf"), name="Inner").set_params({"both": "sub-flow"})
    outer = Peeking(inner, name="Outer").set_params({"both": "flow"})
    await outer.run(params={"both": "run"})
    assert seen == [("Outer.prepare", "run"), ("Inner.prepare", "run"),
                    ("Inner.finalize", "run"), ("Outer.finalize", "run")]


async def test_routing_follows_actions() -> None:
    start = Recorder(name="Start").set_params({"action": "left"})
    left, right = Recorder(name="Left"), Recorder(name="Right")
    start - "left" >> left
    start - "right" >> right
    result = await Flow(start).run()
    assert steps(result) == [("Start", "left"), ("Left", "default")]


async def test_unknown_action_names_node_action_and_choices() -> None:
    start = Recorder(name="Start").set_params({"action": "sideways"})
    start - "left" >> Recorder(name="Left")
    start - "right" >> Recorder(name="Right")
    start - "error" >> Recorder(name="Handler")
    with pytest.raises(UnknownActionError) as info:
        await Flow(start).run_lifecycle({})
    message = str(info.value)
    assert "'Start'" in message and "'sideways'" in message
    assert "'left', 'right'" in message and "'error'" not in message
    result = await Flow(start).run()
    assert result.status == "failed" and isinstance(result.error, UnknownActionError)


async def test_a_node_without_successors_ends_the_flow_on_any_action() -> None:
    result = await Flow(Recorder().set_params({"action": "whatever"})).run()
    assert result.status == "completed"
    assert result.action == "whatever"


async def test_error_and_input_required_edges_do_not_count_as_successors() -> None:
    node = Recorder(name="Only")
    node - "error" >> Recorder(name="Handler")
    node - "input-required" >> Recorder(name="Resume")
    result = await Flow(node).run()
    assert result.status == "completed"
    assert steps(result) == [("Only", "default")]


async def test_complete_ends_the_run_even_with_successors() -> None:
    node = Recorder(name="Start").set_params({"action": "complete"})
    node >> Recorder(name="Never")
    result = await Flow(node).run()
    assert result.status == "completed"
    assert result.action == "complete"
    assert steps(result) == [("Start", "complete")]


async def test_input_required_pauses_and_keeps_state() -> None:
    ask = Recorder(name="Ask").set_params({"action": "input-required"})
    ask >> Recorder(name="Never")
    result = await Flow(ask).run({"kept": True})
    assert result.status == "input-required"
    assert result.paused
    assert result.action == "input-required"
    assert result.shared["kept"] is True
    assert await Flow(ask).run_lifecycle({}) == "input-required"


async def test_failure_routes_to_error_successor_with_description() -> None:
    class Boom(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            raise ValueError("kaput")

    boom, handler = Boom(), Recorder(name="Handler")
    boom - "error" >> handler
    boom >> Recorder(name="Next")
    result = await Flow(boom).run()
    assert result.status == "completed"
    assert result.shared["__error"] == {"node": "Boom", "type": "ValueError", "message": "kaput"}
    assert steps(result) == [("Boom", "error"), ("Handler", "default")]


async def test_unhandled_failure_propagates_and_fails_the_run() -> None:
    class Boom(BaseNode):
        async def prepare(self, shared, params):  # type: ignore[override]
            raise KeyError("missing")

    with pytest.raises(KeyError):
        await Flow(Boom()).run_lifecycle({})
    result = await Flow(Boom()).run()
    assert result.status == "failed"
    assert isinstance(result.error, KeyError)


async def test_finalize_must_return_a_string_action() -> None:
    class Bad(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            return 42

    with pytest.raises(TypeError, match=r"Bad\.finalize\(\) returned 42"):
        await Flow(Bad()).run_lifecycle({})


class Loop(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        return "again"


async def test_self_loop_hits_step_limit_naming_the_cycle() -> None:
    loop = Loop()
    loop - "again" >> loop
    with pytest.raises(StepLimitError, match=r"max_steps=25.*cycle Loop -> Loop\b"):
        await Flow(loop, max_steps=25).run_lifecycle({})
    result = await Flow(loop, max_steps=25).run()
    assert result.status == "failed"
    assert len(result.trace) == 25


async def test_two_node_cycle_is_named_in_order() -> None:
    check, retry = Loop(name="Check"), Loop(name="Retry")
    check - "again" >> retry
    retry - "again" >> check
    start = Recorder(name="Start")
    start >> check
    with pytest.raises(StepLimitError) as info:
        await Flow(start, max_steps=10).run_lifecycle({})
    assert info.value.cycle in (["Check", "Retry", "Check"], ["Retry", "Check", "Retry"])
    assert " -> ".join(info.value.cycle) in str(info.value)


async def test_loop_with_exit_runs_to_completion() -> None:
    class Count(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["n"] = shared.get("n", 0) + 1
            return "again" if shared["n"] < 5 else "done"

    count = Count()
    count - "again" >> count
    count - "done" >> Recorder(name="End")
    result = await Flow(count).run()
    assert result.shared["n"] == 5
    assert steps(result)[-1] == ("End", "default")


# -- sub-flows --------------------------------------------------------------------------------


async def test_subflow_action_is_its_last_inner_action() -> None:
    inner = Flow(Recorder(name="Inner").set_params({"action": "picked"}), name="Sub")
    after = Recorder(name="After")
    inner - "picked" >> after
    result = await Flow(inner).run()
    assert steps(result) == [("Sub/Inner", "picked"), ("Sub", "picked"), ("After", "default")]


async def test_subflow_finalize_can_override_its_action() -> None:
    class Sub(Flow):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["inner_said"] = result
            return "override"

    sub = Sub(Recorder(name="Inner").set_params({"action": "picked"}))
    sub - "override" >> Recorder(name="After")
    result = await Flow(sub).run()
    assert result.shared["inner_said"] == "picked"
    assert steps(result)[-1] == ("After", "default")


async def test_subflow_failure_uses_the_outer_error_edge() -> None:
    class Boom(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            raise RuntimeError("inner broke")

    sub = Flow(Boom(), name="Sub")
    sub - "error" >> Recorder(name="Fallback")
    result = await Flow(sub).run()
    assert result.status == "completed"
    assert result.shared["__error"] == {"node": "Sub/Boom", "type": "RuntimeError", "message": "inner broke"}


# -- hooks and concurrency -------------------------------------------------------------------


class Emitter(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        for i in range(3):
            await self.emit_artifact({"who": shared["who"], "i": i})
            await asyncio.sleep(0)
        self.emit_artifact({"who": shared["who"], "i": "unawaited"})


async def test_status_updates_and_artifacts_per_run() -> None:
    updates: list[tuple[str, str, int]] = []
    artifacts: list[Any] = []
    emit = Emitter()
    emit >> Recorder(name="Next")
    result = await Flow(emit).run(
        {"who": "a"},
        on_status_update=lambda u: updates.append((u.node, u.state, u.step)),
        on_artifact=artifacts.append,
    )
    assert result.status == "completed"
    assert updates == [
        ("Emitter", "working", 1),
        ("Emitter", "completed", 1),
        ("Next", "working", 2),
        ("Next", "completed", 2),
    ]
    assert [a["i"] for a in artifacts] == [0, 1, 2, "unawaited"]


async def test_hooks_as_flow_attributes() -> None:
    seen: list[str] = []
    flow = Flow(Emitter())
    flow.on_artifact = lambda a: seen.append(a["i"])
    await flow.run({"who": "x"})
    assert seen == [0, 1, 2, "unawaited"]


async def test_concurrent_runs_of_one_flow_see_only_their_own_events() -> None:
    flow = Flow(Emitter())
    seen: dict[str, list[Any]] = {"a": [], "b": []}
    statuses: dict[str, list[str]] = {"a": [], "b": []}

    async def run(who: str) -> None:
        async def on_artifact(artifact: Any) -> None:
            await asyncio.sleep(0)
            seen[who].append(artifact)

        await flow.run(
            {"who": who},
            on_artifact=on_artifact,
            on_status_update=lambda u: statuses[who].append(u.shared["who"]),
        )

    await asyncio.gather(*(run(w) for w in ("a", "b")))
    for who in ("a", "b"):
        assert [a["who"] for a in seen[who]] == [who] * 4
        assert [a["i"] for a in seen[who]] == [0, 1, 2, "unawaited"]
        assert statuses[who] == [who, who]


async def test_emit_artifact_outside_a_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="outside a running flow"):
        Emitter().emit_artifact({})


async def test_a_failure_is_logged_once_with_node_and_run_id(caplog: pytest.LogCaptureFixture) -> None:
    class Boom(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            raise RuntimeError("bad")

    sub = Flow(Boom(), name="Sub")
    result = await Flow(sub).run(run_id="run-42")
    assert result.status == "failed"
    failures = [r for r in caplog.records if r.name == "pocketmesh" and "failed" in r.getMessage()]
    assert len(failures) == 1
    assert "Sub/Boom" in failures[0].getMessage() and "run-42" in failures[0].getMessage()


async def test_lifecycle_methods_set_on_an_instance_are_used() -> None:
    node = BaseNode(name="Patched")

    async def execute(prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        return "from instance"

    node.execute = execute  # type: ignore[method-assign]
    node.finalize = lambda shared, prep, result, params: shared.update(out=result) or "done"  # type: ignore[method-assign]
    result = await Flow(node).run()
    assert result.shared == {"out": "from instance"}
    assert result.action == "done"


async def test_observers_see_every_run_until_removed() -> None:
    from pocketmesh import observe

    seen: list[tuple[str, str, int]] = []
    remove = observe(lambda flow, result: seen.append((flow.name, result.status, len(result.trace))))
    try:
        ask = Recorder(name="Ask").set_params({"action": "input-required"})
        await Flow(Recorder(), name="Plain").run()
        await Flow(ask, name="Paused").run()
        with pytest.raises(StepLimitError):
            loop = Loop()
            loop - "again" >> loop
            await Flow(loop, name="Looping", max_steps=3).run_lifecycle({})
    finally:
        remove()
    await Flow(Recorder(), name="After").run()
    assert seen == [("Plain", "completed", 1), ("Paused", "input-required", 1), ("Looping", "failed", 3)]


async def test_a_failing_observer_does_not_break_runs(caplog: pytest.LogCaptureFixture) -> None:
    from pocketmesh import observe

    def broken(flow: Flow, result: Any) -> None:
        raise RuntimeError("observer bug")

    remove = observe(broken)
    try:
        result = await Flow(Recorder()).run()
    finally:
        remove()
    assert result.status == "completed"
    assert "observer" in caplog.text and "observer bug" in caplog.text
