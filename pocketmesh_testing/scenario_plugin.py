"""pytest registration of scenario files, agent fixtures and snapshot fixtures: options, ini
keys and hooks only (the work is in ``scenarios``, ``agents`` and ``snapshots``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pocketmesh_testing.scenario_settings import TRANSCRIPTS, is_scenario_file

pytest_plugins = ["pocketmesh_testing.agent_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pocketmesh", "pocketmesh flow testing")
    group.addoption(
        "--pocketmesh-agent-url", dest="pocketmesh_agent_url", action="append", metavar="[AGENT=]URL",
        help="play scenarios against the live agent at URL (all of them, or those whose `agent` is AGENT, "
        "e.g. pocketmesh.examples.greeting:flows=http://127.0.0.1:4000). Also $POCKETMESH_AGENT_URL.",
    )
    group.addoption(
        "--pocketmesh-agent-db", dest="pocketmesh_agent_db", action="append", metavar="[AGENT=]PATH",
        help="SQLite file of the live agent, to check `shared` expectations and snapshots. Also $POCKETMESH_AGENT_DB.",
    )
    group.addoption(
        "--pocketmesh-transcripts", dest="pocketmesh_transcripts", action="store_true",
        help="print the transcript of every scenario played, passed or not.",
    )
    parser.addini("pocketmesh_scenario_dirs", "directories (from the rootdir) whose *.yaml files are scenarios.",
                  type="args", default=["scenarios"])
    parser.addini("pocketmesh_agent_url", "default for --pocketmesh-agent-url.", type="args", default=[])
    parser.addini("pocketmesh_agent_db", "default for --pocketmesh-agent-db.", type="args", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: a conversation scenario test, run by `pocketmesh gate`.")
    config.stash[TRANSCRIPTS] = {}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    if is_scenario_file(file_path, parent.config):
        from pocketmesh_testing.scenarios import ScenarioFile

        return ScenarioFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not config.getoption("pocketmesh_transcripts", default=False):
        return
    transcripts = config.stash.get(TRANSCRIPTS, {})
    outcomes: dict[str, str] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            outcomes.setdefault(getattr(report, "nodeid", ""), outcome)
    terminalreporter.section("pocketmesh scenario transcripts")
    for nodeid, lines in transcripts.items():
        outcome = outcomes.get(nodeid, "?")
        terminalreporter.write_line(f"{nodeid}: {outcome.upper()}", bold=True, green=outcome == "passed", red=outcome in ("failed", "error"))
        for line in lines[1:]:
            terminalreporter.write_line(line)
