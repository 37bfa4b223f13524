"""The save of how a run ended also writes its last step (one write, not two), unless the
flow runs code of its own after that step: then the step is saved before that code runs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pocketmesh import BaseNode, Flow, Persistence, load_run_record
from tests.pocketmesh.backends import PassThrough


class NotingCheckpoints:
    """A fast-path backend noting each checkpoint: the run's status then, and its step row's id."""

    def __init__(self, inner: Persistence) -> None:
        self.inner = inner
        self.saves: list[tuple[str, str | None]] = []

    async def save_checkpoint(self, run_id: str, state_json: str, params_json: str, step: Any, *args: Any, **kwargs: Any) -> None:
        self.saves.append((json.loads(state_json)["status"], None if step is None else step[0]))
        await self.inner.save_checkpoint(run_id, state_json, params_json, step, *args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class NotingSaves(PassThrough):
    """A five-method backend noting each save: ``("step", id)``, or the run's status then."""

    def __init__(self, inner: Persistence) -> None:
        super().__init__(inner)
        self.saves: list[tuple[str, str | None]] = []

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        self.saves.append(("step", step_id))
        await super().save_step(run_id, step_id, node_name, result)

    async def save_run(self, run_id: str, state: Any, params: Any) -> None:
        self.saves.append((state["status"], None))
        await super().save_run(run_id, state, params)


class Count(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["n"] = shared.get("n", 0) + 1
        return "again" if shared["n"] < 3 else "complete"


def counting(flow_class: type[Flow] = Flow) -> Flow:
    node = Count()
    node - "again" >> node
    return flow_class(node)


def saves_of(backend: Persistence) -> tuple[Any, list[tuple[str, str | None]]]:
    spy = NotingCheckpoints(backend) if hasattr(backend, "save_checkpoint") else NotingSaves(backend)
    return spy, spy.saves


async def test_the_last_step_is_written_with_the_end(backend: Persistence) -> None:
    spy, saves = saves_of(backend)
    result = await counting().run({}, run_id="r", persistence=spy)
    assert result.status == "completed"
    if hasattr(backend, "save_checkpoint"):
        assert saves == [("running", "1"), ("running", "2"), ("completed", "3")]
    else:
        assert saves == [("step", "1"), ("running", None), ("step", "2"), ("running", None), ("step", "3"), ("completed", None)]
    await assert_steps(backend, ["Count-1", "Count-2", "Count-3"])
    record = await load_run_record(backend, "r")
    assert record is not None and record.status == "completed" and [s.step for s in record.trace] == [1, 2, 3]


async def assert_steps(backend: Persistence, expected: list[str]) -> None:
    """The step rows stored (the five-method example keeps steps only once its run exists)."""
    if hasattr(backend, "load_steps"):
        assert sorted(await backend.load_steps("r")) == expected
    else:
        assert sorted(backend.runs["r"]["steps"]) == expected[1:]  # type: ignore[attr-defined]


async def test_a_flow_with_its_own_finalize_has_its_last_step_saved_before_it(backend: Persistence) -> None:
    seen: list[Any] = []

    class Inspecting(Flow):
        """A flow with its own finalize, which reads what is saved when it runs."""

        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            record = await load_run_record(backend, "r")
            seen.append(None if record is None else (record.status, len(record.trace)))
            return result

    result = await counting(Inspecting).run({}, run_id="r", persistence=backend)
    assert result.status == "completed"
    assert seen == [("running", 3)]  # all three steps saved before finalize ran


async def test_a_failing_last_step_is_not_written_as_done(backend: Persistence) -> None:
    class Boom(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            raise RuntimeError("boom")

    first = Count()
    first - "complete" >> Boom()
    first - "again" >> first
    result = await Flow(first).run({}, run_id="r", persistence=backend)
    assert result.status == "failed"
    record = await load_run_record(backend, "r")
    assert record is not None and record.status == "failed"
    await assert_steps(backend, ["Count-1", "Count-2", "Count-3"])  # Boom's step never finished


async def test_a_last_step_with_artifacts_still_on_their_way_is_saved_before_they_arrive(backend: Persistence) -> None:
    # The end's save waits for the artifact hooks; the last step must not wait with it.
    seen: list[int] = []

    class Emit(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            self.emit_artifact({"name": "report"})
            return "complete"

    async def deliver(artifact: Any) -> None:
        for _ in range(200):  # give the run a chance to save the step while this is under way
            record = await load_run_record(backend, "r")
            if record is not None and len(record.trace) == 1:
                break
            await asyncio.sleep(0.005)
        seen.append(0 if record is None else len(record.trace))

    result = await Flow(Emit()).run({}, run_id="r", persistence=backend, on_artifact=deliver)
    assert result.status == "completed"
    assert seen == [1]
