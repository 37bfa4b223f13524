"""Simulations in scenario files: the ``simulations:`` list, and each entry as a pytest item.

A file may hold ``scenarios`` (scripted turns), ``simulations``, or both; ``agent``, ``skill``
and ``cassette`` at the top are defaults for every entry. A simulation's model traffic — the
simulated user's, the judge's, and the in-process agent's own — goes through a cassette: the
file's ``cassette`` when it names one, else ``cassettes/<file>/<simulation>.yaml`` beside the
file. The first run records it, later runs replay it (record mode ``none`` under ``CI``).
Requests of the user and the judge are keyed by path and body, not host, so the recording
replays with no model configured at all. Fake LLM replies for the agent (``llm:``) are answered
by a fake and never recorded; against a live agent the cassette holds only the simulation's
own calls (the agent's happen in its process).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pocketmesh_testing.conversations import format as scenario_format
from pocketmesh_testing.conversations.agents import Agent, a2a_agent
from pocketmesh_testing.conversations.collection import (
    AgentTarget,
    ScenarioFailureRepr,
    ScenarioFile,
    _relpath,
    live_agent,
    load_flows,
    resolve_target,
    skip_if_fake_llm_unreachable,
)
from pocketmesh_testing.conversations.format import ScenarioFormatError
from pocketmesh_testing.conversations.loading import project_imports
from pocketmesh_testing.conversations.player import FAKE_LLM_PORT_ENV, Playback, _check, _script, environment
from pocketmesh_testing.conversations.simulation import Simulation, default_client, simulate
from pocketmesh_testing.conversations.transcript import Mismatch, Paint, plain, render_mismatch
from pocketmesh_testing.doubles.fake_llm import FakeLLM
from pocketmesh_testing.errors import CassetteMissError, SimulationError
from pocketmesh_testing.settings import TRANSCRIPTS, USED_CASSETTES, settings_of

__all__ = ["ConversationFile", "SimulationItem", "SimulationSpec", "load_simulations"]

_RECORDED = pytest.StashKey[set[Path]]()
"""Cassettes this session created: later simulations sharing one add to it instead of missing."""


@dataclass
class SimulationSpec:
    """One entry of a file's ``simulations`` list."""

    name: str
    path: Path
    persona: str
    goal: str
    max_turns: int = 10
    first_message: str | None = None
    criteria: list[str] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)
    llm: list[Any] | None = None
    agent: str | None = None
    skill: str | None = None
    cassette: str | None = None
    skip: str | None = None
    description: str = ""
    line: int = 1
    lines: dict[str, int] = field(default_factory=dict)
    """Line of each key of the entry, and of ``criteria[i]`` / ``expect.<key>``."""

    @property
    def cassette_path(self) -> Path:
        """The cassette this simulation records into and replays from."""
        if self.cassette:
            return self.path.parent / self.cassette
        safe = re.sub(r"[^\w.\-]+", "-", self.name).strip("-") or "simulation"
        return self.path.parent / "cassettes" / self.path.stem / f"{safe}.yaml"


def load_simulations(path: Path) -> list[SimulationSpec]:
    """Every simulation in the file at ``path``; any problem raises :class:`ScenarioFormatError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioFormatError(path, None, "", f"cannot read the file: {error}.") from None
    data, lines = scenario_format._load_yaml(text, path)
    problem = scenario_format._schema_error(data, lines, path)
    if problem is not None:
        raise problem
    if "simulations" not in data:
        return []
    where = scenario_format._line
    if "name" in data and "turns" not in data:
        raise ScenarioFormatError(path, where(lines, ("name",)), "name",
                                  "top-level `name` is for a single-scenario file; name each entry of `simulations`.")
    taken = {str(s.get("name")): where(lines, ("scenarios", i)) for i, s in enumerate(data.get("scenarios") or [])}
    if "turns" in data:
        taken[str(data.get("name") or path.stem)] = 1
    specs: list[SimulationSpec] = []
    for index, raw in enumerate(data["simulations"]):
        at: tuple[str | int, ...] = ("simulations", index)
        line = where(lines, at) or 1
        name = raw["name"]
        if name in taken:
            raise ScenarioFormatError(path, where(lines, at + ("name",)), scenario_format._field(at + ("name",)),
                                      f"{name!r} already names an entry on line {taken[name]}; scenario and "
                                      f"simulation names must be unique in a file.")
        taken[name] = line
        expect = dict(raw.get("expect") or {})
        _check_expect(expect, at, lines, path)
        entry_lines = {str(key): where(lines, at + (key,)) or line for key in raw}
        entry_lines.update({f"criteria[{i}]": where(lines, at + ("criteria", i)) or line
                            for i in range(len(raw.get("criteria") or []))})
        entry_lines.update({f"expect.{key}": where(lines, at + ("expect", key)) or line for key in expect})
        specs.append(SimulationSpec(
            name=name, path=path, persona=raw["persona"], goal=raw["goal"], max_turns=raw.get("max_turns", 10),
            first_message=raw.get("first_message"), criteria=list(raw.get("criteria") or []), expect=expect,
            llm=raw.get("llm"), agent=raw.get("agent", data.get("agent")), skill=raw.get("skill", data.get("skill")),
            cassette=raw.get("cassette", data.get("cassette")), skip=raw.get("skip"),
            description=raw.get("description", ""), line=line, lines=entry_lines,
        ))
    return specs


def _check_expect(expect: dict[str, Any], at: tuple[str | int, ...], lines: Any, path: Path) -> None:
    for key in ("chunks", "error"):
        if key in expect:
            place = at + ("expect", key)
            raise ScenarioFormatError(
                path, scenario_format._line(lines, place), scenario_format._field(place),
                f"`{key}` checks one scripted turn; a simulation's `expect` checks its final reply: "
                f"state, text, artifact_text, artifacts, shared, snapshot.",
            )
    for name, matcher in scenario_format._matchers(expect):
        if isinstance(matcher, dict) and "regex" in matcher:
            try:
                re.compile(matcher["regex"])
            except re.error as error:
                place = at + ("expect",) + name + ("regex",)
                raise ScenarioFormatError(path, scenario_format._line(lines, place), scenario_format._field(place),
                                          f"bad regular expression: {error}.") from None


class ConversationFile(ScenarioFile):
    """A scenario file: its scripted scenarios, then its simulations."""

    def collect(self) -> Iterator[Any]:
        yield from super().collect()
        for spec in load_simulations(self.path):
            item = SimulationItem.from_parent(self, name=spec.name, spec=spec)
            item.add_marker("simulation")
            if spec.skip:
                item.add_marker(pytest.mark.skip(reason=spec.skip))
            yield item


class SimulationFailure(AssertionError):
    """A simulation that ran but fell short: a criterion not met, or its final reply not as expected."""

    def __init__(self, message: str, lines: list[str], line: int) -> None:
        super().__init__(message)
        self.lines, self.line = lines, line


class SimulationItem(pytest.Item):
    """One simulation: a model plays the user against the agent, then a judge rules."""

    def __init__(self, *, spec: SimulationSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.target: AgentTarget | None = None
        self.simulation: Simulation | None = None
        self._partial: list[tuple[str, str]] = []

    def runtest(self) -> None:
        self.target = target = resolve_target(self.config, self.spec)  # type: ignore[arg-type]
        skip_if_fake_llm_unreachable(target, self.spec.llm is not None)
        with project_imports(self.config.rootpath):  # what the agent imports while it runs, it finds
            asyncio.run(self._play(target))

    async def _play(self, target: AgentTarget) -> None:
        spec = self.spec
        agent = self._agent(target)
        try:
            with ExitStack() as stack:
                cassette = stack.enter_context(self._cassette())
                # Built before the agent's fake LLM takes over OPENAI_BASE_URL: the simulated user
                # talks to the real endpoint (or the cassette), never to the agent's fake.
                llm = default_client()
                fake = stack.enter_context(self._fake_llm())
                if target.url:
                    skills = await agent.skills()
                    if spec.skill and spec.skill not in skills:
                        pytest.skip(f"the agent at {target.url} has no skill {spec.skill!r} (it has {', '.join(skills)}).")
                try:
                    self.simulation = await simulate(
                        agent.conversation(skill=spec.skill), persona=spec.persona, goal=spec.goal,
                        max_turns=spec.max_turns, criteria=spec.criteria, first_message=spec.first_message, llm=llm,
                    )
                except SimulationError as error:
                    self._partial = error.transcript
                    raise
                finally:
                    await llm.close()
                if cassette.misses:
                    raise SimulationError(str(cassette.misses[0]), self.simulation.transcript)
                self._check(fake)
        finally:
            await agent.aclose()
            self.config.stash.setdefault(TRANSCRIPTS, {})[self.nodeid] = self._report(partial=self._partial)

    def _agent(self, target: AgentTarget) -> Agent:
        if target.url:
            return live_agent(target)
        assert target.spec is not None
        return a2a_agent(load_flows(target.spec, self.config.rootpath))

    @contextmanager
    def _cassette(self) -> Iterator[Any]:
        from pocketmesh_testing.doubles.cassettes import use_llm_cassette
        from pocketmesh_testing.doubles.network import guard

        path = self.spec.cassette_path
        recorded = self.config.stash.setdefault(_RECORDED, set())
        settings = settings_of(self.config).cassette
        if settings.record_mode in ("once", "all") and path.resolve() in recorded:
            # An earlier simulation of this run wrote the shared cassette afresh: add to it.
            settings = replace(settings, record_mode="new_episodes")
        with use_llm_cassette(path, settings) as cassette:
            self.config.stash[USED_CASSETTES].add(path.resolve())
            if cassette.may_record and settings.record_mode != "new_episodes":
                recorded.add(path.resolve())
            # Replaying needs no key, but an in-process agent's openai client refuses to start without one.
            key = {} if os.environ.get("OPENAI_API_KEY") or cassette.may_record else {"OPENAI_API_KEY": "sk-replayed-from-cassette"}
            with environment(key), guard.policy(enabled=guard.enabled and not cassette.may_record):
                yield cassette

    @contextmanager
    def _fake_llm(self) -> Iterator[FakeLLM | None]:
        if self.spec.llm is None:
            yield None
            return
        fake = FakeLLM(port=int(os.environ.get(FAKE_LLM_PORT_ENV) or 0))
        _script(fake, self.spec.llm)
        try:
            with environment({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": fake.api_key}):
                yield fake
        finally:
            fake.close()

    def _check(self, fake: FakeLLM | None) -> None:
        """The agent's scripted model use, then the final reply, then the judge's verdicts."""
        simulation, spec = self.simulation, self.spec
        assert simulation is not None
        shown = _relpath(self.config, self.path)
        if spec.expect and simulation.final is None:
            line = spec.lines.get("expect", spec.line)
            raise SimulationFailure(
                "expect: no final reply to check",
                [self._paint()(f"expect ({shown}:{line}): the simulated user ended the conversation before sending "
                               f"a message; there is no final reply to check", red=True, bold=True)], line)
        mismatch = _fake_problem(fake, simulation.turns, spec.lines.get("llm", spec.line)) or self._expect_problem()
        if mismatch is not None:
            raise SimulationFailure(f"{mismatch.field}: {mismatch.problem}", render_mismatch(mismatch, shown, self._paint()),
                                    mismatch.line or spec.line)
        failed = [(i, v) for i, v in enumerate(simulation.verdicts) if not v.passed]
        if failed:
            paint = self._paint()
            lines: list[str] = []
            for index, verdict in failed:
                line = spec.lines.get(f"criteria[{index}]", spec.line)
                lines.append(paint(f"criterion not met ({shown}:{line}): {verdict.criterion}", red=True, bold=True))
                lines.append(f"  reason: {verdict.reason}")
            first = spec.lines.get(f"criteria[{failed[0][0]}]", spec.line)
            raise SimulationFailure(f"{len(failed)} of {len(simulation.verdicts)} criteria not met: "
                                    + "; ".join(v.criterion for _, v in failed), lines, first)

    def _expect_problem(self) -> Mismatch | None:
        simulation, spec = self.simulation, self.spec
        assert simulation is not None
        if not spec.expect:
            return None
        line = spec.lines.get("expect", spec.line)
        assert simulation.final is not None
        turn = scenario_format.Turn(simulation.turns - 1, [], spec.expect, line=line,
                                    field_lines={k: spec.lines.get(f"expect.{k}", line) for k in spec.expect})
        scenario = scenario_format.Scenario(spec.name, spec.path, [turn], spec.agent, spec.skill, line=spec.line)
        update = bool(self.config.getoption("update_snapshots", default=False))
        playback = Playback(scenario)
        found = _check(turn, simulation.final, None, playback, update)
        for written in playback.written_snapshots:
            self.add_report_section("call", "snapshots", f"wrote {written}")
        return found

    def _paint(self) -> Paint:
        writer = self.config.get_terminal_writer()
        return writer.markup if writer.hasmarkup else plain

    def _title(self) -> str:
        where = self.target.describe() if self.target else self.spec.agent or "?"
        skill = f", skill {self.spec.skill}" if self.spec.skill else ""
        return f"simulation {self.spec.name!r} against {where}{skill}"

    def _report(self, paint: Paint = plain, partial: list[tuple[str, str]] | None = None) -> list[str]:
        lines = [paint(self._title(), bold=True), f"  persona: {self.spec.persona}", f"  goal: {self.spec.goal}"]
        if self.simulation is not None:
            return lines + self.simulation.render_transcript(paint) + self.simulation.render_verdicts(paint)
        for role, text in partial or []:
            lines.append(f"    {paint(role, cyan=True) if role == 'user' else paint(role, purple=True)}: {text}")
        return lines

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        shown = _relpath(self.config, self.path)
        if isinstance(error, ScenarioFormatError):
            return f"invalid simulation: {error.describe(shown)}"
        paint = self._paint()
        if isinstance(error, SimulationFailure):
            return ScenarioFailureRepr(self._report(paint) + [""] + error.lines, shown, error.line, str(error))
        if isinstance(error, (SimulationError, CassetteMissError)):
            lines = self._report(paint, self._partial) + ["", paint(f"simulation could not finish: {error}", red=True, bold=True)]
            return ScenarioFailureRepr(lines, shown, self.spec.line, str(error))
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.spec.line - 1, f"simulation: {self.spec.name}"


def _fake_problem(fake: FakeLLM | None, turns: int, line: int) -> Mismatch | None:
    if fake is None:
        return None
    if fake.unscripted:
        return Mismatch(turns, "llm", f"the agent called the LLM {len(fake.calls)} time(s) but the simulation scripts "
                        f"{len(fake.calls) - len(fake.unscripted)} repl(ies); unscripted: {fake.unscripted[0]}", line=line)
    if fake.pending:
        return Mismatch(turns, "llm", f"scripted LLM replies the agent never requested: {', '.join(fake.pending)}", line=line)
    return None
