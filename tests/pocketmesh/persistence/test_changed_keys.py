"""Checkpoints write what changed: the keys a step touched, a list the runtime appends to as
its new items, and nothing of the rest; what a reader loads is the whole state all the same."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, Persistence, PersistenceError, load_run_record
from pocketmesh.runs import save_run_record
from pocketmesh.state import TrackedState


class Spy:
    """A fast-path backend, noting the shared-state writes of every checkpoint."""

    def __init__(self, inner: Persistence) -> None:
        self.inner = inner
        self.writes: list[dict[str, Any]] = []

    async def save_checkpoint(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        pending = args[4] if len(args) > 4 else kwargs.get("shared")
        if pending is not None:
            self.writes.append({
                "replace": pending.replace,
                "puts": [p[0] for p in pending.puts],
                "appends": [(a[0], a[3]) for a in pending.appends],
                "drops": [d[0] for d in pending.drops],
            })
        await self.inner.save_checkpoint(run_id, *args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def fast(backend: Persistence) -> Persistence:
    if not hasattr(backend, "save_checkpoint"):
        pytest.skip("the five-method backend saves the whole state, as it always did")
    return backend


class Count(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["counter"] += 1
        return "again" if shared["counter"] < 3 else "complete"


def counting_flow() -> Flow:
    node = Count()
    node - "again" >> node
    return Flow(node)


async def test_a_step_writes_only_the_key_it_changed(fast: Persistence) -> None:
    spy = Spy(fast)
    docs = [{"id": i, "body": "x" * 50} for i in range(50)]
    result = await counting_flow().run({"counter": 0, "documents": docs, "title": "t"}, run_id="r", persistence=spy)
    assert result.status == "completed"
    first, *rest = spy.writes
    assert first["replace"] and sorted(first["puts"]) == ["counter", "documents", "title"]
    # One write per step: the last step's change goes with the save of the run's end.
    assert len(rest) == 2 and all(w["puts"] == ["counter"] and not w["appends"] and not w["drops"] for w in rest)
    record = await load_run_record(fast, "r")
    assert record is not None and record.shared == {"counter": 3, "documents": docs, "title": "t"}
    assert list(record.shared) == ["counter", "documents", "title"]  # key order kept


class Collect(BaseNode):
    """Changes values in place: appends to a list it reads, removes a key, adds another."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["items"].append(len(shared["items"]))
        shared.get("nested")["seen"] += 1
        shared.pop("drop-me", None)
        shared.setdefault("made", []).append("x")
        return "input-required" if len(shared["items"]) < 3 else "complete"


async def test_values_changed_in_place_are_saved(fast: Persistence) -> None:
    flow = Flow(Collect())
    state = {"items": [], "nested": {"seen": 0}, "drop-me": 1, "untouched": {"deep": [1, 2]}}
    await flow.run(state, run_id="r", persistence=fast)
    for _ in range(2):
        await flow.run(None, run_id="r", persistence=fast)
    record = await load_run_record(fast, "r")
    assert record is not None and record.status == "completed"
    assert record.shared == {"items": [0, 1, 2], "nested": {"seen": 3}, "untouched": {"deep": [1, 2]}, "made": ["x", "x", "x"]}


async def test_the_callers_dict_gets_the_final_state(fast: Persistence) -> None:
    state: dict[str, Any] = {"counter": 0}
    result = await counting_flow().run(state, run_id="r", persistence=fast)
    assert state == {"counter": 3} and result.shared is state and type(state) is dict


class Stamp(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["counter"] += 1
        if shared["counter"] == 2:
            shared["log"][0]["when"] = datetime.date(2024, 1, 1)
        return "again"


async def test_a_value_json_cannot_hold_names_its_path_and_nothing_is_written(fast: Persistence) -> None:
    node = Stamp()
    node - "again" >> node
    with pytest.raises(PersistenceError, match=r"shared\['log'\]\[0\]\['when'\]"):
        await Flow(node).run({"counter": 0, "log": [{}]}, run_id="r", persistence=fast)
    record = await load_run_record(fast, "r")
    assert record is not None and record.shared == {"counter": 1, "log": [{}]} and len(record.trace) == 1


async def test_a_list_the_runtime_appends_to_grows_by_its_new_items(fast: Persistence) -> None:
    spy = Spy(fast)
    record = await _record(spy, TrackedState({"history": [1, 2], "other": "a"}))
    for batch in ([3], [4, 5]):
        record.shared.append_items("history", batch)  # type: ignore[attr-defined]
        await save_run_record(spy, record)
    assert [w["appends"] for w in spy.writes[1:]] == [[("history", "[3]")], [("history", "[4,5]")]]
    assert [w["puts"] for w in spy.writes[1:]] == [[], []]
    loaded = await load_run_record(fast, "r")
    assert loaded is not None and loaded.shared == {"history": [1, 2, 3, 4, 5], "other": "a"}
    # Written whole again (a node rewrote it), its appended parts go; appending goes on after.
    loaded.shared["history"] = ["new"]
    await save_run_record(spy, loaded)
    loaded.shared.append_items("history", ["more"])  # type: ignore[attr-defined]
    await save_run_record(spy, loaded)
    again = await load_run_record(fast, "r")
    assert again is not None and again.shared["history"] == ["new", "more"]
    del again.shared["other"]
    await save_run_record(spy, again)
    final = await load_run_record(fast, "r")
    assert final is not None and final.shared == {"history": ["new", "more"]}


async def test_an_unchanged_record_is_not_read_again(fast: Persistence) -> None:
    record = await _record(fast, TrackedState({"k": 1}))
    assert await load_run_record(fast, "r", known=record) is record
    other = await load_run_record(fast, "r")
    assert other is not None
    other.shared["k"] = 2
    await save_run_record(fast, other)  # someone else saved since: the kept record is stale
    fresh = await load_run_record(fast, "r", known=record)
    assert fresh is not record and fresh is not None and fresh.shared == {"k": 2}


async def _record(store: Persistence, shared: TrackedState) -> Any:
    from pocketmesh.runs import RunRecord

    record = RunRecord(run_id="r", shared=shared, status="input-required")
    await save_run_record(store, record)
    return record


class Restate(BaseNode):
    """Sets a key to the value it already has, and another to a new one."""

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["task"] = "t-1"
        shared["zero"] = -0.0
        shared["step"] += 1
        return "again" if shared["step"] < 3 else "complete"


async def test_the_same_value_again_writes_nothing(fast: Persistence) -> None:
    spy = Spy(fast)
    node = Restate()
    node - "again" >> node
    await Flow(node).run({"task": "t-1", "zero": 0.0, "step": 0}, run_id="r", persistence=spy)
    first, *steps = spy.writes  # the last step's writes go with the run's end
    assert sorted(first["puts"]) == ["step", "task", "zero"]
    # "task" is set to the same string each step and is not written again; a float is always
    # written, since -0.0 == 0.0 would otherwise hide the change of sign.
    assert [sorted(w["puts"]) for w in steps] == [["step", "zero"]] * 2
    record = await load_run_record(fast, "r")
    assert record is not None and str(record.shared["zero"]) == "-0.0"


class Open(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["notes"] = ["a"]
        shared["meta"] = {"seen": 0}
        return "input-required"


class Note(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["notes"].append(shared["input"])
        shared["meta"]["seen"] += 1
        return "input-required"  # a pause: no save after this step's own checkpoint


async def test_values_changed_in_place_by_the_first_step_after_resume_are_saved(fast: Persistence) -> None:
    opening, note = Open(), Note()
    opening - "input-required" >> note
    note - "input-required" >> note
    flow = Flow(opening)
    await flow.run({}, run_id="r", persistence=fast)
    result = await flow.resume("r", {"input": "b"}, persistence=fast)
    assert result.shared == {"notes": ["a", "b"], "meta": {"seen": 1}, "input": "b"}
    record = await load_run_record(fast, "r")
    assert record is not None and record.shared == result.shared


class Pick(BaseNode):
    """Keeps a reference to a list it read and points another key into the state."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[Any] = []

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        self.kept = shared["log"]
        shared["current"] = shared["orders"][-1]
        return "default"


class Work(BaseNode):
    """Changes both lists through what the step before kept, reading neither key."""

    def __init__(self, pick: Pick) -> None:
        super().__init__()
        self.pick = pick

    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        self.pick.kept.append("worked")
        shared["current"]["done"] = True
        return "complete"


async def test_values_changed_through_a_reference_taken_in_an_earlier_step_are_saved(fast: Persistence) -> None:
    pick = Pick()
    pick >> Work(pick)
    state = {"log": [], "orders": [{"id": 1, "done": False}]}
    result = await Flow(pick).run(state, run_id="r", persistence=fast)
    expected = {"log": ["worked"], "orders": [{"id": 1, "done": True}], "current": {"id": 1, "done": True}}
    assert result.shared == expected
    record = await load_run_record(fast, "r")
    assert record is not None and record.shared == expected
