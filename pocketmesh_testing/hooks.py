"""The harness's pytest hooks: options, ini keys, markers and hooks only.

Registered by :mod:`pocketmesh_testing.plugin` when the harness's requirements are installed;
the work is done in the three rooms. Fixtures are grouped per room (``doubles.fixtures``: the
fake LLM, cassettes, persistence; ``conversations.fixtures``: agents and snapshots).
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pocketmesh_testing.doubles.cassettes import RECORD_MODES
from pocketmesh_testing.doubles.network import guard
from pocketmesh_testing.settings import (
    CALL_FAILED,
    SETTINGS,
    TRANSCRIPTS,
    USED_CASSETTES,
    is_scenario_file,
    settings_from_config,
)

_MARKERS = (
    "allow_network: let this test reach hosts outside loopback (the network guard is off for it).",
    "llm_cassette(path=None, *, record_mode=None): record / replay this test's HTTP traffic in a "
    "cassette (default cassettes/<test module>/<test name>.yaml beside the test).",
    "flow_property: a Hypothesis property test of a flow, run by `pocketmesh gate`.",
    "scenario: a conversation scenario test, run by `pocketmesh gate`.",
)
_COLLECTED = pytest.StashKey[set[Path]]()
_PARTIAL = pytest.StashKey[set[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pocketmesh", "pocketmesh flow testing")
    # -- doubles: network guard, cassettes, async tests
    group.addoption(
        "--pocketmesh-record-mode", dest="pocketmesh_record_mode", choices=RECORD_MODES, default=None,
        help="cassette record mode (default: ini pocketmesh_record_mode, else 'none' when $CI is set, "
        "else 'once').",
    )
    group.addoption(
        "--pocketmesh-allow-network", dest="pocketmesh_allow_network", action="store_true",
        help="turn the network guard off for the whole run.",
    )
    group.addoption(
        "--pocketmesh-unused-cassettes", dest="pocketmesh_unused_cassettes", action="store_true",
        help="list cassette files beside the collected tests that no test used.",
    )
    parser.addini("pocketmesh_record_mode", "cassette record mode: none, once, new_episodes or all.", default="")
    parser.addini("pocketmesh_network_guard", "block connections outside loopback in tests.", type="bool",
                  default=True)
    parser.addini("pocketmesh_allowed_hosts", "extra host names tests may always reach.", type="linelist",
                  default=[])
    parser.addini("pocketmesh_cassette_filter_headers", "extra header names kept out of cassettes.",
                  type="linelist", default=[])
    parser.addini("pocketmesh_cassette_filter_query", "extra query parameters kept out of cassettes.",
                  type="linelist", default=[])
    parser.addini("pocketmesh_cassette_filter_body", "JSON body keys kept out of cassettes.",
                  type="linelist", default=[])
    parser.addini("pocketmesh_mark_async_tests", "run `async def` tests under pytest-asyncio without "
                  "marking them.", type="bool", default=True)
    # -- conversations: scenario files, live agents, transcripts
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
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS] = settings_from_config(config)
    config.stash[USED_CASSETTES] = set()
    config.stash[_COLLECTED] = set()
    config.stash[_PARTIAL] = set()
    config.stash[TRANSCRIPTS] = {}
    guard.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    guard.uninstall()


def _is_coroutine_test(obj: Any) -> bool:
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
    return inspect.iscoroutinefunction(inner)


def _asyncio_mode(config: pytest.Config) -> str | None:
    try:
        return str(config.getini("asyncio_mode") or "strict")
    except ValueError:  # pytest-asyncio is not installed
        return None


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Generator[None, Any, Any]:
    # pytest-asyncio (strict by default) only runs marked coroutines; marking them here, before
    # its own wrapper sees the item, saves users the asyncio configuration.
    config = collector.config
    if (
        config.stash[SETTINGS].mark_async_tests
        and _is_coroutine_test(obj)
        and isinstance(collector, (pytest.Module, pytest.Class))
        and collector.funcnamefilter(name)
        and _asyncio_mode(config) == "strict"
        and not any(m.name in ("asyncio", "anyio", "trio") for m in getattr(obj, "pytestmark", []))
        and not any(True for n in ("asyncio", "anyio", "trio") for _ in collector.iter_markers(n))
    ):
        pytest.mark.asyncio(obj)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    settings = item.config.stash[SETTINGS]
    blocking = settings.network_guard and item.get_closest_marker("allow_network") is None
    with guard.policy(enabled=blocking, allowed_hosts=settings.allowed_hosts):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[CALL_FAILED] = True
    return report


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        item.config.stash[_PARTIAL].add(Path(str(item.path)).resolve())


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_COLLECTED].update(Path(str(item.path)).resolve() for item in session.items)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    if is_scenario_file(file_path, parent.config.stash[SETTINGS]):
        from pocketmesh_testing.conversations.collection import ScenarioFile

        return ScenarioFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    settings = config.stash[SETTINGS]
    if settings.report_unused_cassettes:
        _report_unused_cassettes(terminalreporter, config)
    if settings.show_transcripts:
        _report_transcripts(terminalreporter, config)


def _report_unused_cassettes(terminalreporter: Any, config: pytest.Config) -> None:
    from pocketmesh_testing.doubles.cassettes import find_unused_cassettes

    unused = find_unused_cassettes(
        config.stash[_COLLECTED], config.stash[USED_CASSETTES], partial_modules=sorted(config.stash[_PARTIAL])
    )
    terminalreporter.section("pocketmesh unused cassettes")
    if not unused:
        terminalreporter.write_line("no unused cassettes")
        return
    for path in unused:
        terminalreporter.write_line(f"unused cassette: {path}")
    terminalreporter.write_line(f"{len(unused)} cassette file(s) no collected test used; delete them "
                                f"if their tests are gone.")


def _report_transcripts(terminalreporter: Any, config: pytest.Config) -> None:
    transcripts = config.stash.get(TRANSCRIPTS, {})
    outcomes: dict[str, str] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            outcomes.setdefault(getattr(report, "nodeid", ""), outcome)
    terminalreporter.section("pocketmesh scenario transcripts")
    for nodeid, lines in transcripts.items():
        outcome = outcomes.get(nodeid, "?")
        terminalreporter.write_line(
            f"{nodeid}: {outcome.upper()}", bold=True, green=outcome == "passed", red=outcome in ("failed", "error")
        )
        for line in lines[1:]:
            terminalreporter.write_line(line)


# -- properties: Hypothesis profiles --------------------------------------------------------------
# Registered at plugin load, before Hypothesis reads --hypothesis-profile in pytest_configure.
import pocketmesh_testing.properties.profiles  # noqa: E402,F401  (the dev and release profiles)
