"""Kept flow examples as regression tests: a minimal failing example a property saved, replayed.

A flow example names its flow (``flow: module:attr``, a Flow or a function building one), the
``property`` it broke (``terminates`` or ``resume-idempotent``), the scripted ``actions``, the
model's ``llm`` answers and the user's ``users`` turns, and for a resume example where the run
was interrupted. Replaying runs that one example again and checks the property on it: it fails
while the bug is there and passes once it is fixed.

The model answers are served by a fake LLM on loopback, announced to the flow through
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` (as scenario files do): flows that build their openai
client from the environment replay exactly. Side effects a property counted through its
``side_effects`` function are not replayed; model calls are.

The plugin collects example files under the scenario directories, and any named on the command
line, as tests (marked ``flow_property``); ``pocketmesh replay FILE`` runs them.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pocketmesh import Flow, InMemoryPersistence, StepLimitError

from pocketmesh_testing.conversations.discovery import FLOW_PROPERTIES
from pocketmesh_testing.conversations.loading import project_imports
from pocketmesh_testing.conversations.player import environment
from pocketmesh_testing.doubles.fake_llm import FakeLLM
from pocketmesh_testing.properties.checks import PropertyFailure
from pocketmesh_testing.properties.verdicts import forced_note, model_failure_note, termination_problem
from pocketmesh_testing.properties.driving import Outcome, drive
from pocketmesh_testing.properties.references import resolve
from pocketmesh_testing.properties.resume import ResumeCheck
from pocketmesh_testing.properties.scripted import Driver, driving, scripted_flow
from pocketmesh_testing.properties.strategies import ActionScript, LLMFailure, OutsideWorld

__all__ = ["ExampleError", "ExampleFile", "ExampleItem", "FlowExample", "check_example", "load_example"]


class ExampleError(ValueError):
    """A flow example file that cannot be replayed, with the file and the field."""


@dataclass
class FlowExample:
    """One kept flow example, read from its file."""

    name: str
    flow: str
    property: str
    script: dict[str, tuple[str, ...]]
    world: OutsideWorld
    max_steps: int = 200
    shared: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    input_key: str = "input"
    expected_errors: tuple[str, ...] = ()
    interrupt: dict[str, int] = field(default_factory=dict)
    path: Path | None = None


def load_example(path: Path) -> FlowExample:
    """Read a flow example file; a missing or malformed field raises :class:`ExampleError` naming it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))

    def bad(name: str, problem: str) -> ExampleError:
        return ExampleError(f"{path}: {name}: {problem}")

    if not isinstance(data, dict):
        raise bad("(file)", "a flow example is a mapping with `flow`, `property` and `actions`.")
    if not isinstance(data.get("flow"), str) or ":" not in data["flow"]:
        raise bad("flow", f"{data.get('flow')!r} is not `module:attr` of a Flow or of a function building one; "
                          f"set it, e.g. flow: myapp.flows:build_flow.")
    if data.get("property") not in FLOW_PROPERTIES:
        raise bad("property", f"{data.get('property')!r} is not one of {', '.join(FLOW_PROPERTIES)}.")
    script: dict[str, list[str]] = {}
    for item in data.get("actions") or []:
        if not isinstance(item, dict) or len(item) != 1:
            raise bad("actions", f"{item!r} is not one `Node: action` pair.")
        ((node, action),) = item.items()
        script.setdefault(str(node), []).append(str(action))
    answers = tuple(LLMFailure(int(a["status"])) if isinstance(a, dict) else str(a) for a in data.get("llm") or [])
    interrupt = {str(k): int(v) for k, v in (data.get("interrupt") or {}).items()}
    return FlowExample(
        name=str(data.get("name") or path.stem), flow=data["flow"], property=data["property"],
        script={n: tuple(a) for n, a in script.items()},
        world=OutsideWorld(answers, tuple(str(u) for u in data.get("users") or [])),
        max_steps=int(data.get("max_steps") or 200), shared=dict(data.get("shared") or {}),
        params=data.get("params"), input_key=str(data.get("input_key") or "input"),
        expected_errors=tuple(str(e) for e in data.get("expected_errors") or ()), interrupt=interrupt, path=path,
    )


async def check_example(example: FlowExample, llm: FakeLLM | None) -> str | None:
    """Replay ``example``: why the property still fails on it, or None once it holds."""
    target = resolve(example.flow)
    if not isinstance(target, Flow) and not callable(target):
        raise ExampleError(f"{example.path}: flow: {example.flow!r} is a {type(target).__name__}, not a Flow "
                           f"or a function building one.")

    def build() -> Flow:
        made = target if isinstance(target, Flow) else target()
        if not isinstance(made, Flow):
            raise ExampleError(f"{example.path}: flow: {example.flow!r} returned {made!r}, not a Flow.")
        return made

    if example.property == "terminates":
        return await _terminates(example, build(), llm)
    return await _resumes(example, build, fresh=not isinstance(target, Flow), llm=llm)


async def _terminates(example: FlowExample, flow: Flow, llm: FakeLLM | None) -> str | None:
    if llm is not None:
        example.world.install(llm)
    mirror = scripted_flow(flow, max_steps=example.max_steps)
    driver = Driver({n: list(a) for n, a in example.script.items()})
    with driving(driver):
        try:
            outcome = await drive(mirror, InMemoryPersistence(), copy.deepcopy(example.shared),
                                  deque(example.world.users), example.input_key, example.params)
        except Exception as error:  # run-level failures escape run(); judge them too
            outcome = Outcome("failed", {}, [], error, type(error).__name__)
    problem = termination_problem(flow, outcome, example.expected_errors, example.max_steps)
    if problem is not None and not isinstance(outcome.error, StepLimitError):
        notes = [forced_note(driver.forced), model_failure_note(outcome.error, example.world)]
        problem += "".join(f"\n{note}" for note in notes if note)
    return problem


async def _resumes(example: FlowExample, build: Any, *, fresh: bool, llm: FakeLLM | None) -> str | None:
    check = ResumeCheck(build, fresh, example.shared, example.params, InMemoryPersistence, llm, None,
                        example.input_key, example.max_steps, example.expected_errors)
    script = ActionScript(example.script)
    reference, effects = await check.reference(script, example.world)
    problem = check.reference_problem(reference, example.world)
    if problem is not None:
        return problem
    after, during = example.interrupt.get("after_step"), example.interrupt.get("crash_during_step")
    if after is not None and 1 <= after <= len(effects):
        return await check.between_steps(script, example.world, reference, effects, after)
    if during is not None and 1 <= during <= len(effects):
        return await check.crash(script, example.world, reference, effects, during)
    return None  # the run no longer reaches the interrupted step: the path the bug needed is gone


def replay(example: FlowExample) -> str | None:
    """Replay ``example`` in a fresh event loop, with a loopback fake LLM when it has model answers."""
    if not example.world.llm:
        return asyncio.run(check_example(example, None))
    fake = FakeLLM()
    try:
        with environment({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": fake.api_key}):
            return asyncio.run(check_example(example, fake))
    finally:
        fake.close()


class ExampleFile(pytest.File):
    """A YAML file holding one kept flow example."""

    def collect(self) -> Iterator[ExampleItem]:
        example = load_example(self.path)
        item = ExampleItem.from_parent(self, name=example.name, example=example)
        item.add_marker("flow_property")
        yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ExampleError):
            return f"invalid flow example {excinfo.value}"
        return super().repr_failure(excinfo, style)


class ExampleItem(pytest.Item):
    """Replays one kept flow example and checks its property."""

    def __init__(self, *, example: FlowExample, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.example = example

    def runtest(self) -> None:
        with project_imports(self.config.rootpath):  # the flow's module, and what it imports while it runs
            problem = replay(self.example)
        if problem is not None:
            raise PropertyFailure(problem)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if isinstance(error, (PropertyFailure, ExampleError)):
            kind = "still fails" if isinstance(error, PropertyFailure) else "cannot be replayed"
            return (f"flow example {self.example.name!r} ({self.example.property} of {self.example.flow}) "
                    f"{kind}:\n{error}")
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"flow example: {self.example.name}"


def replay_main(argv: list[str]) -> int:
    """``pocketmesh replay [FILE ...] [-- PYTEST ARGS]``; returns the exit status."""
    import argparse

    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(
        prog="pocketmesh replay",
        description="Run each FILE (a flow example a property saved, or a scenario file) with pytest and the "
        "project's configuration; exit 0 when every one passes. Without FILE: every example kept in the "
        "failures directory (.pocketmesh/failures, or $POCKETMESH_FAILURES_DIR).",
        epilog="Arguments after -- go to pytest as they are.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="example or scenario files (default: the kept examples)")
    args = parser.parse_args(argv[:split])
    return run_replay(list(args.files), argv[split + 1:])


def run_replay(paths: list[str], pytest_args: list[str], *, failures_dir: Path | None = None) -> int:
    """``pocketmesh replay``: run kept examples and scenario files as tests; returns pytest's exit status.

    No ``paths``: every YAML file in the failures directory. Each file must be a scenario file or
    a flow example; pytest runs them with the project's own configuration (the current directory).
    """
    import subprocess
    import sys

    from pocketmesh_testing.conversations.discovery import file_kind
    from pocketmesh_testing.properties.failures import failures_dir as default_dir

    if not paths:
        directory = failures_dir or default_dir(None)
        found = sorted(str(p) for p in directory.glob("*.y*ml")) if directory and directory.is_dir() else []
        if not found:
            print(f"pocketmesh replay: no kept examples in {directory}; name the files to replay.", file=sys.stderr)
            return 4
        paths = found
    for path in paths:
        if not Path(path).is_file():
            print(f"pocketmesh replay: {path} does not exist; give a scenario file or a saved example.", file=sys.stderr)
            return 4
        if file_kind(Path(path)) is None:
            print(f"pocketmesh replay: {path} is neither a scenario file (`scenarios:` or `turns:`) nor a saved "
                  f"flow example (`flow:` and `property:`); nothing to replay.", file=sys.stderr)
            return 4
    return subprocess.call([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *paths, *pytest_args])
