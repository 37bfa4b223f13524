"""Scenario files as pytest tests: each YAML file under the scenario directories is a
:class:`ScenarioFile`, each scenario in it a :class:`ScenarioItem`.

Where a scenario's agent comes from, first match wins:

1. ``--pocketmesh-agent-url SPEC=URL`` (or ``$POCKETMESH_AGENT_URL`` / ini
   ``pocketmesh_agent_url``) for a scenario whose ``agent`` is ``SPEC``;
2. ``--pocketmesh-agent-url URL``: every scenario talks to the live agent at ``URL``;
3. the scenario's ``agent``: ``module:attr`` of a dict of flows, served in-process, or a URL.

A live agent is reached through its card; scenarios for a skill it lacks are skipped, and so
are scenarios that script fake LLM replies, unless the agent was started with its model at
``http://127.0.0.1:$POCKETMESH_FAKE_LLM_PORT/v1`` (as ``pocketmesh demo`` does). Shared-state
expectations against a live agent need its store: ``--pocketmesh-agent-db [SPEC=]PATH``
(its SQLite file).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pocketmesh_testing.conversations.agents import Agent, a2a_agent, remote_agent
from pocketmesh_testing.conversations.format import Scenario, ScenarioFormatError, load_scenarios
from pocketmesh_testing.conversations.loading import AgentLoadError, load_agent, load_flows, project_imports
from pocketmesh_testing.conversations.player import (
    FAKE_LLM_PORT_ENV,
    ScenarioMismatchError,
    environment,
    fake_llm_for,
    play,
)
from pocketmesh_testing.conversations.transcript import plain, render_mismatch, render_transcript
from pocketmesh_testing.errors import CassetteMissError
from pocketmesh_testing.settings import TRANSCRIPTS, USED_CASSETTES, settings_of

__all__ = ["AgentTarget", "ScenarioFile", "ScenarioItem", "load_flows", "resolve_target"]

@dataclass(frozen=True)
class AgentTarget:
    """Which agent a scenario talks to: flows to serve in-process (``spec``) or a live ``url``."""

    spec: str | None
    url: str | None = None
    db: str | None = None

    def describe(self) -> str:
        """For transcripts."""
        return self.url if self.url else f"{self.spec} (in-process)"


def _pairs(values: Iterable[str]) -> tuple[dict[str, str], str | None]:
    """``SPEC=VALUE`` entries as a dict, and the last bare ``VALUE`` (applies to everything)."""
    mapped: dict[str, str] = {}
    bare: str | None = None
    for value in values:
        spec, sep, rest = value.partition("=")
        if sep and not spec.startswith(("http://", "https://")) and ":" in spec and not os.path.sep in spec:
            mapped[spec.strip()] = rest.strip()
        else:
            bare = value.strip()
    return mapped, bare


def resolve_target(config: pytest.Config, scenario: Scenario) -> AgentTarget:
    """The agent ``scenario`` plays against, given the command line, environment and ini."""
    settings = settings_of(config)
    urls, any_url = _pairs(settings.agent_urls)
    dbs, any_db = _pairs(settings.agent_dbs)
    spec = scenario.agent
    url = (urls.get(spec) if spec else None) or any_url
    if url is None and spec and spec.startswith(("http://", "https://")):
        url = spec
    if url is None and not spec:
        raise ScenarioFormatError(
            scenario.path, scenario.line, "agent",
            "the scenario names no agent; add `agent: module:attr` (a dict of flows) or `agent: http://...`, "
            "or pass --pocketmesh-agent-url URL.",
        )
    db = (dbs.get(spec) if spec else None) or any_db
    return AgentTarget(spec, url, db if url else None)


def live_agent(target: AgentTarget) -> Agent:
    """The agent served at ``target.url``, reading shared state from ``target.db`` if named."""
    assert target.url is not None
    persistence = None
    if target.db:
        from pocketmesh import SQLitePersistence

        persistence = SQLitePersistence(target.db)
    return remote_agent(target.url, persistence=persistence)


def skip_if_fake_llm_unreachable(target: AgentTarget, scripts_llm: bool) -> None:
    """Skip a scenario that scripts fake LLM replies when it plays against a live agent that
    was not started against the fake (``POCKETMESH_FAKE_LLM_PORT`` unset)."""
    if target.url and scripts_llm and not os.environ.get(FAKE_LLM_PORT_ENV):
        pytest.skip(
            f"scripts fake LLM replies, which the live agent at {target.url} cannot see; play it "
            f"in-process, or start the agent with OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 and set "
            f"{FAKE_LLM_PORT_ENV}=PORT."
        )


@dataclass(frozen=True)
class _Crash:
    path: str
    lineno: int
    message: str


class ScenarioFailureRepr:
    """A scenario failure as pytest prints it; ``reprcrash`` gives the one-line summary (``-rf``)."""

    def __init__(self, lines: list[str], path: str, line: int, message: str) -> None:
        self.lines = lines
        self.reprcrash = _Crash(path, line, message)

    def toterminal(self, tw: Any) -> None:
        for line in self.lines:
            tw.line(line)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _relpath(config: pytest.Config, path: Path) -> str:
    try:
        return os.path.relpath(path, config.invocation_params.dir)
    except ValueError:  # another drive on Windows
        return str(path)


class ScenarioFile(pytest.File):
    """A YAML file of scenarios."""

    def collect(self) -> Iterator[ScenarioItem]:
        scenarios = load_scenarios(self.path)
        self._load_agents(scenarios)
        for scenario in scenarios:
            item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
            item.add_marker("scenario")
            if scenario.skip:
                item.add_marker(pytest.mark.skip(reason=scenario.skip))
            yield item

    def _load_agents(self, scenarios: list[Scenario]) -> None:
        # Importing the in-process agents here makes a broken agent module one short collection
        # error for the file, instead of a traceback per scenario.
        seen: set[str] = set()
        for scenario in scenarios:
            try:
                target = resolve_target(self.config, scenario)
            except ScenarioFormatError:
                continue  # no agent at all: that scenario says so when it runs
            if target.url is None and target.spec and target.spec not in seen:
                seen.add(target.spec)
                load_agent(target.spec, self.config.rootpath, self.path, scenario.agent_line)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, AgentLoadError):
            return excinfo.value.describe(_relpath(self.config, self.path))
        if isinstance(excinfo.value, ScenarioFormatError):
            return f"invalid scenario file {excinfo.value.describe(_relpath(self.config, self.path))}"
        return super().repr_failure(excinfo, style)


def _miss(misses: list[CassetteMissError], mismatch: ScenarioMismatchError | None) -> CassetteMissError:
    error = CassetteMissError(str(misses[0]))
    if mismatch is not None:
        error.add_note(f"The scenario then failed at {mismatch}")
    return error


class ScenarioItem(pytest.Item):
    """One scenario: a conversation played turn by turn against its agent."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.target: AgentTarget | None = None
        self.transcript: list[str] = []

    def runtest(self) -> None:
        self.target = target = resolve_target(self.config, self.scenario)
        skip_if_fake_llm_unreachable(target, self.scenario.uses_fake_llm)
        with project_imports(self.config.rootpath):  # what the agent imports while it runs, it finds
            asyncio.run(self._play(target))

    async def _play(self, target: AgentTarget) -> None:
        agent = self._agent(target)
        playback = None
        misses: list[CassetteMissError] = []
        try:
            with ExitStack() as stack:
                fake = stack.enter_context(fake_llm_for(self.scenario))
                if self.scenario.cassette:
                    misses = stack.enter_context(self._cassette())
                if target.url:
                    skills = await agent.skills()
                    if self.scenario.skill and self.scenario.skill not in skills:
                        pytest.skip(f"the agent at {target.url} has no skill {self.scenario.skill!r} (it has {', '.join(skills)}).")
                try:
                    playback = await play(self.scenario, agent, fake=fake, update_snapshots=self._update_snapshots())
                except ScenarioMismatchError as error:
                    playback = error.playback
                    if misses:  # the agent failed because its model call had no recording: say so
                        raise _miss(misses, error) from None
                    raise
                if misses:
                    raise _miss(misses, None)
        finally:
            await agent.aclose()
            conv = playback.conversation if playback else None
            self.transcript = render_transcript(self._title(), conv.exchanges if conv else [])
            self.config.stash.setdefault(TRANSCRIPTS, {})[self.nodeid] = self.transcript
            for path in playback.written_snapshots if playback else []:
                self.add_report_section("call", "snapshots", f"wrote {path}")

    def _agent(self, target: AgentTarget) -> Agent:
        if target.url:
            return live_agent(target)
        assert target.spec is not None
        return a2a_agent(load_agent(target.spec, self.config.rootpath, self.path, self.scenario.agent_line))

    def _cassette(self) -> Any:
        from contextlib import contextmanager

        from pocketmesh_testing.doubles.cassettes import use_llm_cassette
        from pocketmesh_testing.doubles.network import guard

        path = self.scenario.path.parent / str(self.scenario.cassette)

        @contextmanager
        def active() -> Iterator[list[CassetteMissError]]:
            # Replaying needs no real key, but the openai client refuses to start without one.
            key = {} if os.environ.get("OPENAI_API_KEY") else {"OPENAI_API_KEY": "sk-replayed-from-cassette"}
            with environment(key), use_llm_cassette(path, settings_of(self.config).cassette) as cassette:
                self.config.stash[USED_CASSETTES].add(path.resolve())
                with guard.policy(enabled=guard.enabled and not cassette.may_record):
                    yield cassette.misses

        return active()

    def _update_snapshots(self) -> bool:
        return bool(self.config.getoption("update_snapshots", default=False))

    def _title(self) -> str:
        where = self.target.describe() if self.target else self.scenario.agent or "?"
        skill = f", skill {self.scenario.skill}" if self.scenario.skill else ""
        return f"scenario {self.scenario.name!r} against {where}{skill}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if not isinstance(error, (ScenarioMismatchError, ScenarioFormatError, CassetteMissError)):
            return super().repr_failure(excinfo, style)
        paint = self.config.get_terminal_writer().markup if self.config.get_terminal_writer().hasmarkup else plain
        if isinstance(error, AgentLoadError):
            return error.describe(_relpath(self.config, self.path))
        if isinstance(error, ScenarioFormatError):
            return f"invalid scenario: {error.describe(_relpath(self.config, self.path))}"
        if isinstance(error, CassetteMissError):
            lines = [*self.transcript, "", paint(f"CassetteMissError: {error}", red=True, bold=True),
                     *(getattr(error, "__notes__", None) or [])]
            return ScenarioFailureRepr(lines, _relpath(self.config, self.path), self.scenario.line, str(error))
        conv = error.playback.conversation
        shown = _relpath(self.config, self.path)
        lines = render_transcript(self._title(), conv.exchanges if conv else [], paint)
        lines += [""] + render_mismatch(error.mismatch, shown, paint)
        return ScenarioFailureRepr(lines, shown, error.mismatch.line or self.scenario.line, str(error))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.scenario.name}"
