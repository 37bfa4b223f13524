"""Property checks for flows: every run terminates, and resuming a run changes nothing.

``assert_terminates(flow)`` runs the flow under generated action scripts and outside worlds and
fails, with a shrunk example that names the cycle, if a run outlives its step budget or fails
with an unexpected error. ``assert_resume_idempotent(flow)`` interrupts runs at every step
(between steps, and by a crash inside one) and checks the resumed run ends exactly as an
uninterrupted one, with no side effect repeated beyond the interrupted step.

Importing this module registers the ``dev`` and ``release`` Hypothesis profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pocketmesh import Flow, InMemoryPersistence, StepLimitError

from pocketmesh_testing.properties import profiles
from pocketmesh_testing.properties.driving import Outcome, drive
from pocketmesh_testing.properties.edges import record_run
from pocketmesh_testing.properties.failures import failures_dir, run_document, world_document, write_example
from pocketmesh_testing.properties.references import import_path_of
from pocketmesh_testing.properties.resume import ResumeCheck
from pocketmesh_testing.properties.scripted import Driver, driving, scripted_flow
from pocketmesh_testing.properties.strategies import ActionScript, OutsideWorld, action_sequences, outside_world
from pocketmesh_testing.properties.verdicts import forced_note, model_failure_note, termination_problem
from pocketmesh_testing.properties.wiring import check_wiring

__all__ = ["DEV", "RELEASE", "PropertyFailure", "assert_resume_idempotent", "assert_terminates", "termination_problem"]

DEV = profiles.DEV
RELEASE = profiles.RELEASE

FlowSource = Union[Flow, Callable[[], Flow]]
"""A flow, or a function building a fresh one (a fresh process, for resume checks)."""


class PropertyFailure(AssertionError):
    """A flow property does not hold; the message shows the shrunk example."""


@dataclass
class _Example:
    """The last failing example seen: enough to write it out as YAML."""

    message: str
    document: dict[str, Any]
    source: Any = None
    """The flow or factory the property was given, to find its import path when the file is written."""


# -- running Hypothesis over async flow runs ------------------------------------------------------

def _run_property(body: Callable[[st.DataObject], Awaitable[None]], user_settings: settings | None) -> None:
    base = user_settings if user_settings is not None else settings()
    chosen = settings(
        base,
        deadline=None,
        database=None,  # one dynamic test function serves every flow: saved examples would mix them
        report_multiple_bugs=False,
        # The explain phase re-runs failing examples under a tracer: slow, and our message already explains.
        phases=[p for p in base.phases if p != Phase.explain],
        suppress_health_check=[*base.suppress_health_check, HealthCheck.too_slow],
    )

    def run_all() -> None:
        # One loop for all examples: cheaper than asyncio.run per example.
        with asyncio.Runner() as runner:

            @chosen
            @given(st.data())
            def check(data: st.DataObject) -> None:
                runner.run(body(data))

            check()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        run_all()
        return
    # Called from an async test: the examples need their own loop, so they run in a thread.
    failure: list[BaseException] = []

    def in_thread() -> None:
        try:
            run_all()
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=in_thread, name="pocketmesh-property")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _finish(holder: list[_Example], directory: Path | None, name: str, error: BaseException, flow_ref: str | None) -> None:
    if not holder or directory is None or not isinstance(error, PropertyFailure):
        return
    example = holder[-1]
    ref = flow_ref or import_path_of(example.source)
    path = write_example(directory, name, {**example.document, "flow": ref})
    if ref is not None:
        error.add_note(f"minimal example saved to {path}; replay it with: pocketmesh replay {path}")
    else:
        error.add_note(f"minimal example saved to {path}, but it names no flow: no import path for the flow was "
                       f"found. Pass flow_ref='module:attr' (a module attribute holding the flow, or a function "
                       f"building it) to save a replayable example.")


def _check(
    body: Callable[[st.DataObject], Awaitable[None]],
    user_settings: settings | None,
    holder: list[_Example],
    directory: Path | None,
    name: str,
    llm: Any,
    flow_ref: str | None,
) -> None:
    """Run a property; keep its minimal failing example as a file; leave the fake LLM clean."""
    try:
        _run_property(body, user_settings)
    except PropertyFailure as error:
        _finish(holder, directory, name, error, flow_ref)
        raise
    finally:
        if llm is not None:
            llm.reset()


def _model_environment(llm: Any) -> contextlib.AbstractContextManager[None]:
    """While an example runs, ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` name the fake model, if ``llm`` is one."""
    from pocketmesh_testing.doubles.fake_llm import FakeLLM

    return llm.environment() if isinstance(llm, FakeLLM) else contextlib.nullcontext()


def _trace_text(trace: Sequence[tuple[int, str, str | None]], last: int = 12) -> str:
    shown = [f"{node}:{action}" for _, node, action in trace[-last:]]
    more = f"... ({len(trace) - last} earlier) " if len(trace) > last else ""
    return more + (" -> ".join(shown) or "(no steps)")


def _actions_doc(taken: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{node: action} for node, action in taken]


def _actions_text(taken: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{n}={a}" for n, a in taken) or "(none: every node acted on its own)"


# -- termination -----------------------------------------------------------------------------------

def assert_terminates(
    flow: Flow,
    *,
    max_steps: int = 200,
    settings: settings | None = None,
    shared: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    llm: Any = None,
    world: st.SearchStrategy[OutsideWorld] | None = None,
    scripted: bool = True,
    max_actions: int = 6,
    extra_actions: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    expected_errors: Sequence[type[BaseException]] = (),
    input_key: str = "input",
    check_static: bool = True,
    flow_ref: str | None = None,
    failures_dir: str | Path | None = None,
) -> None:
    """Every run ends (completed, paused, or failed with an expected error) within ``max_steps``."""
    if not isinstance(flow, Flow):
        raise TypeError(f"assert_terminates(flow) needs a pocketmesh Flow, got {flow!r} ({type(flow).__name__}).")
    expected = _expected_errors(expected_errors)
    report = check_wiring(flow) if check_static else None
    # Only what wiring proves fails up front; a loop without a wired exit may still end by a
    # node returning "complete", so the runs below decide, and the wiring explains a loop they find.
    if report is not None and report.certain_problems:
        raise PropertyFailure(str(report))
    mirror = scripted_flow(flow, max_steps=max_steps)
    scripts = action_sequences(flow, max_length=max_actions, extra_actions=extra_actions) if scripted else None
    worlds = world if world is not None else outside_world(llm=llm is not None)
    holder: list[_Example] = []

    async def body(data: st.DataObject) -> None:
        script = data.draw(scripts, label="actions") if scripts is not None else ActionScript({})
        outside = data.draw(worlds, label="world")
        if llm is not None:
            outside.install(llm)
        driver = Driver(script.choices)
        with driving(driver), _model_environment(llm):
            try:
                outcome = await drive(mirror, InMemoryPersistence(), dict(copy.deepcopy(shared or {})),
                                       deque(outside.users), input_key, params)
            except Exception as error:  # run-level failures (e.g. persistence) escape run()
                outcome = Outcome("failed", {}, [], error, type(error).__name__)
        record_run(flow, outcome.trace)
        problem = termination_problem(flow, outcome, expected, max_steps)
        if problem is None:
            return
        if report is not None and not report.ok and isinstance(outcome.error, StepLimitError):
            problem += "\n" + str(report)
        elif not isinstance(outcome.error, StepLimitError):
            notes = [forced_note(driver.forced), model_failure_note(outcome.error, outside)]
            problem += "".join(f"\n{note}" for note in notes if note)
        message = (
            f"{problem}\n  scripted actions: {_actions_text(driver.taken)}\n  outside world: {outside!r}\n"
            f"  trace: {_trace_text(outcome.trace)}"
        )
        holder.append(_Example(message, {
            "name": f"{flow.name} terminates",
            "flow": None,
            "property": "terminates",
            "max_steps": max_steps,
            "actions": _actions_doc(driver.taken),
            **world_document(outside.llm, outside.users),
            **run_document(shared, params, input_key, expected),
            "expect": {"terminates": True},
        }, flow))
        raise PropertyFailure(message) from outcome.error

    _check(body, settings, holder, failures_dir_of(failures_dir), f"{flow.name}-terminates", llm, flow_ref)


def _expected_errors(given: Sequence[type[BaseException]]) -> tuple[type[BaseException], ...]:
    expected = tuple(given)
    if not all(isinstance(e, type) and issubclass(e, BaseException) for e in expected):
        raise TypeError(f"expected_errors must be exception classes, got {given!r}; e.g. (TimeoutError,).")
    return expected


def failures_dir_of(explicit: str | Path | None) -> Path | None:
    """Where minimal examples go (``failures_dir`` argument, else ``$POCKETMESH_FAILURES_DIR``)."""
    return failures_dir(explicit)


# -- resume idempotence ----------------------------------------------------------------------------

def assert_resume_idempotent(
    flow: FlowSource,
    *,
    shared: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    persistence_factory: Callable[[], Any] = InMemoryPersistence,
    settings: settings | None = None,
    llm: Any = None,
    side_effects: Callable[[], int] | None = None,
    world: st.SearchStrategy[OutsideWorld] | None = None,
    scripted: bool = True,
    max_actions: int = 4,
    max_steps: int = 100,
    expected_errors: Sequence[type[BaseException]] = (),
    input_key: str = "input",
    flow_ref: str | None = None,
    failures_dir: str | Path | None = None,
) -> None:
    """Interrupting a run at any step and resuming it ends as the uninterrupted run does.

    ``flow`` may be a function returning a fresh Flow: resumed runs then use new node instances,
    as a new process would. Side effects are the ``llm`` (a FakeLLM) calls plus ``side_effects()``.
    The uninterrupted run failing with an error not in ``expected_errors`` fails the property
    with that error: a run that cannot get going proves nothing about resuming.
    """
    expected = _expected_errors(expected_errors)
    build = _flow_builder(flow)
    sample = build()
    scripts = action_sequences(sample, max_length=max_actions) if scripted else None
    worlds = world if world is not None else outside_world(llm=llm is not None)
    fresh = not isinstance(flow, Flow)
    holder: list[_Example] = []
    check = ResumeCheck(build, fresh, shared or {}, params, persistence_factory, llm, side_effects, input_key, max_steps,
                        expected)

    async def body(data: st.DataObject) -> None:
        script = data.draw(scripts, label="actions") if scripts is not None else ActionScript({})
        outside = data.draw(worlds, label="world")
        with _model_environment(llm):
            problem, where = await check.run(data, script, outside)
        if problem is None:
            return
        message = f"{problem}\n  scripted actions: {script!r}\n  outside world: {outside!r}"
        holder.append(_Example(message, {
            "name": f"{sample.name} resumes idempotently",
            "flow": None,
            "property": "resume-idempotent",
            "max_steps": max_steps,
            "actions": [{n: a} for n, acts in script.choices.items() for a in acts],
            **world_document(outside.llm, outside.users),
            **run_document(shared, params, input_key, expected),
            "interrupt": where,
            "expect": {"resume_idempotent": True},
        }, flow))
        raise PropertyFailure(message)

    _check(body, settings, holder, failures_dir_of(failures_dir), f"{sample.name}-resume", llm, flow_ref)


def _flow_builder(flow: FlowSource) -> Callable[[], Flow]:
    if isinstance(flow, Flow):
        return lambda: flow
    if callable(flow):
        def build() -> Flow:
            made = flow()
            if not isinstance(made, Flow):
                raise TypeError(f"the flow factory {flow!r} returned {made!r}; it must return a pocketmesh Flow.")
            return made
        return build
    raise TypeError(f"flow must be a Flow or a function returning a fresh Flow, got {flow!r} ({type(flow).__name__}).")

