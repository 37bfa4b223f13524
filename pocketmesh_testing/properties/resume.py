"""The checks behind ``assert_resume_idempotent``: interrupt a run, resume it, compare.

Three ways to interrupt step ``k`` of a run: stop after it (a ``FlowStepper`` takes ``k`` steps,
then ``flow.run`` continues), crash inside it (the step's work is done but its checkpoint is not
saved; the run resumes in the same process), and resume that crash's checkpoint twice (copied
into two fresh stores; the second in a fresh flow when a factory is given).

Two runs are compared the way snapshots compare state: each run's shared state is normalised
first (:func:`pocketmesh_testing.conversations.snapshots.normalise`), so a flow that stores a
fresh ``uuid4()`` or ``time.time()`` passes, while one id stored where the other run stored two
different ones, or a value written twice, still shows as a difference.
"""

from __future__ import annotations

import copy
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from pocketmesh import Flow, FlowStepper, RunRecord, load_run_record

from pocketmesh_testing.properties.driving import RUN_ID, Outcome, continue_run, drive
from pocketmesh_testing.properties.edges import record_run
from pocketmesh_testing.properties.scripted import Driver, Interrupted, driving, scripted_flow
from pocketmesh_testing.properties.strategies import ActionScript, OutsideWorld
from pocketmesh_testing.properties.verdicts import forced_note, model_failure_note, unexpected_error

__all__ = ["ResumeCheck", "difference"]

Effects = list[tuple[str, int]]


class ResumeCheck:
    """Runs one example of the resume property; returns the problem found, if any."""

    def __init__(
        self,
        build: Callable[[], Flow],
        fresh: bool,
        shared: Mapping[str, Any],
        params: Mapping[str, Any] | None,
        persistence_factory: Callable[[], Any],
        llm: Any,
        side_effects: Callable[[], int] | None,
        input_key: str,
        max_steps: int,
        expected: Sequence[type[BaseException] | str] = (),
    ) -> None:
        self.build = build
        self.expected = tuple(expected)
        self.forced: list[tuple[str, str, str]] = []
        """Actions the reference run's script forced on nodes that chose others."""
        self.flow_name = ""
        self.fresh = fresh
        self.shared = dict(shared)
        self.params = params
        self.persistence_factory = persistence_factory
        self.llm = llm
        self.side_effects = side_effects
        self.input_key = input_key
        self.max_steps = max_steps

    # -- plumbing ----------------------------------------------------------------------------

    def count(self) -> int:
        """Side effects so far: fake LLM calls plus the user's counter."""
        calls = len(self.llm.calls) if self.llm is not None else 0
        return calls + (int(self.side_effects()) if self.side_effects is not None else 0)

    def mirror(self) -> tuple[Flow, Flow]:
        """A (fresh when a factory was given) flow and its scripted mirror."""
        flow = self.build()
        return flow, scripted_flow(flow, max_steps=self.max_steps)

    def start(self, world: OutsideWorld) -> int:
        """Reset the world for a new path; returns the side-effect baseline."""
        if self.llm is not None:
            world.install(self.llm)
        else:
            world.rewind(0)
        return self.count()

    async def store(self, record: RunRecord | None = None) -> Any:
        """A fresh store, holding ``record`` when given."""
        made = self.persistence_factory()
        store = await made if inspect.isawaitable(made) else made
        if record is not None:
            await store.save_run(RUN_ID, record.to_state(), record.params)
        return store

    def initial(self) -> dict[str, Any]:
        return copy.deepcopy(self.shared)

    @staticmethod
    async def guarded(run: Awaitable[Outcome]) -> Outcome:
        try:
            return await run
        except Interrupted:
            raise
        except Exception as error:  # run-level failures escape run(); compare them too
            return Outcome("failed", {}, [], error, type(error).__name__)

    # -- the example -------------------------------------------------------------------------

    async def run(self, data: st.DataObject, script: ActionScript, world: OutsideWorld) -> tuple[str | None, dict[str, Any]]:
        """Reference run, then the interruptions drawn from ``data``."""
        reference, effects = await self.reference(script, world)
        problem = self.reference_problem(reference, world)
        if problem is not None:
            return problem, {}
        if not effects:
            return None, {}
        steps = len(effects)
        after = data.draw(st.integers(1, steps), label="interrupt after step")
        problem = await self.between_steps(script, world, reference, effects, after)
        if problem is not None:
            return problem, {"after_step": after}
        during = data.draw(st.integers(1, steps), label="crash during step")
        problem = await self.crash(script, world, reference, effects, during)
        if problem is not None:
            return problem, {"crash_during_step": during}
        return None, {}

    async def reference(self, script: ActionScript, world: OutsideWorld) -> tuple[Outcome, Effects]:
        """The uninterrupted run and the side effects of each of its steps."""
        flow, mirror = self.mirror()
        base = self.start(world)
        driver = Driver(script.choices, counter=lambda: self.count() - base)
        with driving(driver):
            outcome = await self.guarded(
                drive(mirror, await self.store(), self.initial(), deque(world.users), self.input_key, self.params)
            )
        record_run(flow, outcome.trace)
        self.forced, self.flow_name = list(driver.forced), flow.name
        return outcome, driver.effects_per_step()

    def reference_problem(self, reference: Outcome, world: OutsideWorld) -> str | None:
        """The uninterrupted run failing with an unexpected error: the property fails with it."""
        problem = unexpected_error(self.flow_name, reference, self.expected)
        if problem is None:
            return None
        notes = [forced_note(self.forced, "assert_resume_idempotent"), model_failure_note(reference.error, world)]
        return f"the uninterrupted run {problem[0].lower()}{problem[1:]}" + "".join(f"\n{n}" for n in notes if n)

    async def between_steps(
        self, script: ActionScript, world: OutsideWorld, reference: Outcome, effects: Effects, after: int
    ) -> str | None:
        """Stop after step ``after`` (a stepper), continue with ``flow.run``; same end, same effects."""
        _, mirror = self.mirror()
        base = self.start(world)
        store = await self.store()
        users = deque(world.users)
        driver = Driver(script.choices, counter=lambda: self.count() - base)
        with driving(driver):
            stepper = FlowStepper(mirror, persistence=store, run_id=RUN_ID, shared=self.initial(),
                                  params=None if self.params is None else dict(self.params))
            paused = False
            for _ in range(after):
                if paused:
                    if not users:
                        break
                    stepper.shared = {**(stepper.shared or {}), self.input_key: users.popleft()}
                try:
                    step = await stepper.step()
                except Exception:
                    break  # the run failed; its record says so, and the continuation reads it
                if step.done:
                    break
                paused = step.paused
            continuation = self.mirror()[1] if self.fresh else mirror
            outcome = await self.guarded(continue_run(continuation, store, self.shared, users, self.input_key, self.params))
        where = f"the run stopped after step {after} ({effects[after - 1][0]}) and resumed" + (
            " in a fresh flow" if self.fresh else ""
        )
        repeated = _repeated(effects, driver.effects_per_step(), allowed=0)
        if repeated is not None:
            return f"side effects repeated: {where} {repeated}"
        diff = difference(reference, outcome)
        if diff is not None:
            return f"{where} ended differently from the uninterrupted run: {diff}"
        return None

    async def crash(
        self, script: ActionScript, world: OutsideWorld, reference: Outcome, effects: Effects, during: int
    ) -> str | None:
        """Crash inside step ``during``, resume twice from its checkpoint; same end, bounded effects."""
        _, mirror = self.mirror()
        base = self.start(world)
        store = await self.store()
        users = deque(world.users)
        driver = Driver(script.choices, counter=lambda: self.count() - base, crash_at=during, mark=lambda: world.position)
        driver.on_crash = lambda: world.rewind(driver.marks[-1])
        with driving(driver):
            try:
                await self.guarded(drive(mirror, store, self.initial(), users, self.input_key, self.params))
            except Interrupted:
                pass
            else:
                return None  # the step never reached finalize (it failed first): nothing to resume
        node = effects[during - 1][0]
        record = await load_run_record(store, RUN_ID)
        left, position = list(users), world.position
        remaining = {n: list(q) for n, q in driver.remaining.items()}
        before = self.count() - base
        with driving(driver):
            first = await self.guarded(
                continue_run(mirror, await self.store(record), self.shared, deque(left), self.input_key, self.params)
            )
        first_effects = self.count() - base - before
        where = f"after a crash during step {during} ({node}) the run resumed"
        allowed = effects[during - 1][1]
        repeated = _repeated(effects, driver.effects_per_step(), allowed=allowed)
        if repeated is not None:
            return f"side effects repeated: {where} {repeated}"
        diff = difference(reference, first)
        if diff is not None:
            return f"{where} and ended differently from the uninterrupted run: {diff}"
        world.rewind(position)
        again_mirror = self.mirror()[1] if self.fresh else mirror
        again_base = self.count()
        with driving(Driver(remaining, counter=lambda: self.count() - again_base)):
            second = await self.guarded(
                continue_run(again_mirror, await self.store(record), self.shared, deque(left), self.input_key, self.params)
            )
        second_effects = self.count() - again_base
        diff = difference(first, second)
        # A fresh flow has no in-memory leftovers of the crashed attempt, so it may redo more.
        if diff is None and second_effects != first_effects and not self.fresh:
            diff = f"{second_effects} side effect(s) instead of {first_effects}"
        if diff is None and self.fresh and before + second_effects > sum(n for _, n in effects) + allowed:
            diff = (f"the resume in a fresh flow made {second_effects} side effect(s) after {before} before the "
                    f"crash, more than the uninterrupted run's {sum(n for _, n in effects)} plus {allowed}")
        if diff is not None:
            return f"resuming the checkpoint left by a crash during step {during} ({node}) twice gave different results: {diff}"
        return None


def _repeated(reference: Effects, resumed: Effects, *, allowed: int) -> str | None:
    expected, made = sum(n for _, n in reference), sum(n for _, n in resumed)
    if made <= expected + allowed:
        return None
    culprit = next(
        (f"; the first extra came from step {i + 1} ({r[0]})" for i, (r, e) in enumerate(zip(resumed, reference)) if r[1] > e[1]),
        "",
    )
    slack = f" (plus {allowed} the interrupted step may repeat)" if allowed else ""
    return (
        f"and made {made} LLM call(s)/side effect(s) where the uninterrupted run made {expected}{slack}{culprit}. "
        f"Keep results in shared state so a resumed run does not redo them."
    )


def difference(expected: Outcome, actual: Outcome) -> str | None:
    """The first way ``actual`` differs from ``expected`` (status, error, trace, normalised shared), or None."""
    if expected.status != actual.status or expected.error_type != actual.error_type:
        return (
            f"status {actual.status!r} ({actual.error_type or 'no error'}) instead of "
            f"{expected.status!r} ({expected.error_type or 'no error'})"
        )
    if expected.trace != actual.trace:
        i = next((i for i, (a, b) in enumerate(zip(expected.trace, actual.trace)) if a != b),
                 min(len(expected.trace), len(actual.trace)))
        return (
            f"trace differs at entry {i}: {actual.trace[i:i + 2]} instead of {expected.trace[i:i + 2]} "
            f"({len(actual.trace)} steps instead of {len(expected.trace)})"
        )
    from pocketmesh_testing.conversations.snapshots import normalise

    wanted, got = normalise(expected.shared, keep_internal=True), normalise(actual.shared, keep_internal=True)
    found = _shared_difference(wanted, got, "shared")
    return None if found is None else found + " (ids and times shown as snapshots show them)"


def _shared_difference(expected: Any, actual: Any, path: str) -> str | None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in [*expected, *(k for k in actual if k not in expected)]:
            if key not in actual:
                return f"{path}[{key!r}] is missing (expected {expected[key]!r:.80})"
            if key not in expected:
                return f"{path}[{key!r}] = {actual[key]!r:.80} is unexpected"
            found = _shared_difference(expected[key], actual[key], f"{path}[{key!r}]")
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path} has {len(actual)} item(s) instead of {len(expected)}: {actual!r:.120} instead of {expected!r:.120}"
        for index, (wanted, got) in enumerate(zip(expected, actual)):
            found = _shared_difference(wanted, got, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if expected != actual:
        return f"{path} is {actual!r:.120} instead of {expected!r:.120}"
    return None
