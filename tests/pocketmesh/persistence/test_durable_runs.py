"""Durable runs on every backend: pause / resume, crash recovery, the stepper, bad state."""

from __future__ import annotations

import datetime

import pytest

from pocketmesh import (
    BaseNode,
    Flow,
    FlowStepper,
    Persistence,
    PersistenceError,
    PocketMeshError,
    RunFinishedError,
    cancel_run,
    load_run_record,
)
from tests.pocketmesh.backends import DiesAfterSave
from tests.pocketmesh.conftest import steps

# -- a three-turn conversation ----------------------------------------------------------------


class Ask(BaseNode):
    """Asks for the user's name, pauses, resumes at Greet."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared.setdefault("said", []).append("What is your name?")
        return "input-required"


class Greet(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["said"].append(f"Hello {shared['input']}, anything else?")
        return "input-required"


class Chat(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        if shared["input"] == "bye":
            shared["said"].append("Goodbye")
            return "complete"
        shared["said"].append(f"You said {shared['input']}")
        return "input-required"


def conversation() -> Flow:
    ask, greet, chat = Ask(), Greet(), Chat()
    ask - "input-required" >> greet
    greet - "input-required" >> chat
    return Flow(ask)


async def test_pause_resume_over_three_turns(backend: Persistence) -> None:
    flow = conversation()
    turn1 = await flow.run({}, run_id="c1", persistence=backend)
    assert turn1.status == "input-required"
    turn2 = await flow.run({**turn1.shared, "input": "Ada"}, run_id="c1", persistence=backend)
    assert turn2.status == "input-required"
    turn3 = await flow.run({**turn2.shared, "input": "tea"}, run_id="c1", persistence=backend)
    assert turn3.status == "input-required"
    # no chat successor for input-required: the pausing node is entered again
    turn4 = await flow.run({**turn3.shared, "input": "bye"}, run_id="c1", persistence=backend)
    assert turn4.status == "completed"
    assert turn4.shared["said"] == [
        "What is your name?",
        "Hello Ada, anything else?",
        "You said tea",
        "Goodbye",
    ]
    assert steps(turn4) == [
        ("Ask", "input-required"),
        ("Greet", "input-required"),
        ("Chat", "input-required"),
        ("Chat", "complete"),
    ]
    record = await load_run_record(backend, "c1")
    assert record is not None and record.status == "completed"


async def test_resume_with_none_continues_with_the_persisted_state(backend: Persistence) -> None:
    flow = conversation()
    await flow.run({"input": "Bo"}, run_id="c2", persistence=backend)
    resumed = await flow.run(None, run_id="c2", persistence=backend)
    assert resumed.shared["said"][-1] == "Hello Bo, anything else?"


@pytest.mark.parametrize("ending", ["completed", "failed", "canceled"])
async def test_finished_runs_refuse_to_run_again(backend: Persistence, ending: str) -> None:
    class End(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            if ending == "failed":
                raise ValueError("nope")

    flow = Flow(End())
    if ending == "canceled":
        await conversation().run({}, run_id="r", persistence=backend)
        await cancel_run(backend, "r")
    else:
        await flow.run({}, run_id="r", persistence=backend)
    record = await load_run_record(backend, "r")
    assert record is not None and record.status == ending
    with pytest.raises(RunFinishedError, match=f"has finished \\(status '{ending}'\\)") as info:
        await flow.run({}, run_id="r", persistence=backend)
    assert isinstance(info.value, PocketMeshError)
    record_after = await load_run_record(backend, "r")
    assert record_after is not None and record_after.status == ending


# -- crash recovery ----------------------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying right after a checkpoint."""


class Work(BaseNode):
    async def prepare(self, shared, params):  # type: ignore[override]
        return shared.get("total", 0)

    async def execute(self, total, shared, params, attempt):  # type: ignore[override]
        return total * 2 + int(self.name.split("#")[-1] if "#" in self.name else 1)

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["total"] = result
        shared.setdefault("visited", []).append(self.name)


def ten_step_flow() -> Flow:
    nodes = [Work(name=f"W#{i}") for i in range(1, 11)]
    for a, b in zip(nodes, nodes[1:]):
        a >> b
    return Flow(nodes[0])


async def test_a_crash_after_every_step_resumes_to_the_same_state(backend: Persistence) -> None:
    reference = await ten_step_flow().run({})
    for crash_after in range(1, 11):
        run_id = f"crash-{crash_after}"
        crashing = DiesAfterSave(backend, crash_after, Crash)
        with pytest.raises(PersistenceError, match="killed after save"):
            await ten_step_flow().run({}, run_id=run_id, persistence=crashing)
        record = await load_run_record(backend, run_id)
        assert record is not None and len(record.trace) == crash_after
        if crash_after == 10:
            # The last step is saved with the run's end: one save, nothing left to resume.
            assert record.status == "completed" and record.shared == reference.shared
            continue
        assert record.status == "running"
        resumed = await ten_step_flow().run(None, run_id=run_id, persistence=backend)
        assert resumed.status == "completed"
        assert resumed.shared == reference.shared
        assert steps(resumed) == steps(reference)


# -- the stepper -------------------------------------------------------------------------------


async def test_stepper_runs_one_node_per_call(backend: Persistence) -> None:
    stepper = FlowStepper(ten_step_flow(), persistence=backend, shared={})
    results = [await stepper.step() for _ in range(10)]
    assert [r.node for r in results] == [f"W#{i}" for i in range(1, 11)]
    assert [r.done for r in results] == [False] * 9 + [True]
    assert stepper.shared == (await ten_step_flow().run({})).shared
    with pytest.raises(RunFinishedError):
        await stepper.step()


async def test_stepper_without_persistence() -> None:
    stepper = FlowStepper(ten_step_flow(), shared={})
    while not (await stepper.step()).done:
        pass
    assert stepper.shared["visited"] == [f"W#{i}" for i in range(1, 11)]


async def test_stepper_and_run_continue_each_others_runs(backend: Persistence) -> None:
    flow = ten_step_flow()
    stepper = FlowStepper(flow, persistence=backend, run_id="mixed", shared={})
    for _ in range(3):
        await stepper.step()
    finished = await flow.run(None, run_id="mixed", persistence=backend)
    assert finished.status == "completed"
    assert finished.shared == (await ten_step_flow().run({})).shared

    paused = await conversation().run({}, run_id="talk", persistence=backend)
    assert paused.status == "input-required"
    stepper = FlowStepper(conversation(), persistence=backend, run_id="talk")
    assert stepper.shared is None
    stepper_shared = (await load_run_record(backend, "talk")).shared  # type: ignore[union-attr]
    stepper.shared = {**stepper_shared, "input": "Cy"}
    step = await stepper.step()
    assert (step.node, step.action, step.paused, step.done) == ("Greet", "input-required", True, False)
    resumed = await conversation().run({**stepper.shared, "input": "bye"}, run_id="talk", persistence=backend)
    assert resumed.shared["said"][-1] == "Goodbye"


async def test_stepper_reports_pauses(backend: Persistence) -> None:
    stepper = FlowStepper(conversation(), persistence=backend, shared={})
    first = await stepper.step()
    assert first.paused and not first.done and first.node == "Ask"


# -- sub-flows -----------------------------------------------------------------------------------


async def test_a_pause_inside_a_subflow_resumes_inside_it(backend: Persistence) -> None:
    class Before(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["before"] = shared.get("before", 0) + 1

    class Prep(Flow):
        async def prepare(self, shared, params):  # type: ignore[override]
            shared["sub_prepared"] = shared.get("sub_prepared", 0) + 1
            return "token"

        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["sub_prep_seen"] = prep
            return result

    sub = Prep(conversation().start_node, name="Talk")
    before = Before()
    before >> sub
    sub - "complete" >> Work(name="After")
    flow = Flow(before)
    r1 = await flow.run({}, run_id="nested", persistence=backend)
    r2 = await flow.run({**r1.shared, "input": "Di"}, run_id="nested", persistence=backend)
    r3 = await flow.run({**r2.shared, "input": "bye"}, run_id="nested", persistence=backend)
    assert (r1.status, r2.status, r3.status) == ("input-required", "input-required", "completed")
    assert r3.shared["before"] == 1
    assert r3.shared["sub_prepared"] == 1
    assert r3.shared["sub_prep_seen"] == "token"
    assert steps(r3) == [
        ("Before", "default"),
        ("Talk/Ask", "input-required"),
        ("Talk/Greet", "input-required"),
        ("Talk/Chat", "complete"),
        ("Talk", "complete"),
        ("After", "default"),
    ]


# -- bad state, listing, deleting ---------------------------------------------------------------


async def test_non_serializable_state_names_the_key_path_and_writes_nothing(backend: Persistence) -> None:
    class Bad(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            shared["user"] = {"joined": datetime.date(2026, 1, 2), "tags": ["a"]}

    flow = Flow(Bad())
    flow.start_node - "error" >> Work()
    with pytest.raises(PersistenceError, match=r"shared\['user'\]\['joined'\].*date") as info:
        await flow.run({}, run_id="bad", persistence=backend)
    assert isinstance(info.value, TypeError)
    assert await backend.list_runs() == []
    assert await load_run_record(backend, "bad") is None

    with pytest.raises(PersistenceError, match=r"shared\['items'\]\[1\]"):
        await Flow(Work()).run({"items": [1, {2}]}, run_id="set", persistence=backend)
    with pytest.raises(PersistenceError, match=r"shared\['ratio'\].*NaN"):
        await Flow(Work()).run({"ratio": float("nan")}, run_id="nan", persistence=backend)
    with pytest.raises(PersistenceError, match=r"dict keys must be str"):
        await Flow(Work()).run({"by_id": {1: "x"}}, run_id="keys", persistence=backend)


async def test_non_serializable_state_is_fine_without_persistence() -> None:
    result = await Flow(Work()).run({"when": datetime.date(2026, 1, 2)})
    assert result.status == "completed"


async def test_list_and_delete_runs(backend: Persistence) -> None:
    for run_id in ("a", "b", "c"):
        await ten_step_flow().run({}, run_id=run_id, persistence=backend)
    assert await backend.list_runs() == ["a", "b", "c"]
    await backend.delete_run("b")
    assert await backend.list_runs() == ["a", "c"]
    assert await load_run_record(backend, "b") is None
    await backend.delete_run("unknown")
    rerun = await ten_step_flow().run({}, run_id="b", persistence=backend)
    assert rerun.status == "completed"


async def test_a_foreign_record_is_reported_not_misread(backend: Persistence) -> None:
    await backend.save_run("foreign", {"hello": "world"}, {})
    with pytest.raises(PersistenceError, match="not a pocketmesh run record"):
        await ten_step_flow().run({}, run_id="foreign", persistence=backend)


async def test_str_subclass_keys_are_accepted(backend: Persistence) -> None:
    import enum

    class Color(str, enum.Enum):
        RED = "red"

    result = await Flow(Work()).run({"by_color": {Color.RED: 1}}, run_id="enum-keys", persistence=backend)
    assert result.status == "completed"
