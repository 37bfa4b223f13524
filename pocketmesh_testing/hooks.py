"""The harness's pytest hooks: options, ini keys, markers and hooks for all three rooms.

Registered by :mod:`pocketmesh_testing.plugin` when the harness's requirements are installed;
the work is done in the three rooms. Fixtures are grouped per room (``doubles.fixtures``: the
fake LLM, cassettes, persistence; ``conversations.fixtures``: agents and snapshots).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pocketmesh_testing.async_tests import quiet_loop_scope_warning
from pocketmesh_testing.doubles.cassettes import RECORD_MODES
from pocketmesh_testing.doubles.network import guard
from pocketmesh_testing.errors import CassetteMissError
from pocketmesh_testing.properties.failures import set_default_failures_dir
from pocketmesh_testing.settings import (
    CALL_FAILED,
    CASSETTE_MISSES,
    SETTINGS,
    TRANSCRIPTS,
    USED_CASSETTES,
    activate,
    collected_kind,
    deactivate,
    settings_from_config,
)
from pocketmesh_testing.usage import HARNESS_FIXTURES, HARNESS_MARKERS, session_uses_pocketmesh

_MARKERS = (
    "allow_network: let this test reach hosts outside loopback (the network guard is off for it).",
    "llm_cassette(path=None, *, record_mode=None): record / replay this test's HTTP traffic in a "
    "cassette (default cassettes/<test module>/<test name>.yaml beside the test).",
    "flow_property: a Hypothesis property test of a flow, run by `pocketmesh gate`.",
    "scenario: a conversation scenario test, run by `pocketmesh gate`.",
    "simulation: a simulated-user conversation from a scenario file, run by `pocketmesh gate`.",
)
_COLLECTED = pytest.StashKey[set[Path]]()
_PARTIAL = pytest.StashKey[set[Path]]()
_UNQUIET = pytest.StashKey[Any]()
_PREVIOUS_FAILURES_DIR = pytest.StashKey[Any]()
_GUARDED = pytest.StashKey[bool]()
"""Whether this session's tests run under the network guard (decided once collection is done)."""


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
    parser.addini("pocketmesh_network_guard", "block connections outside loopback in tests (unset: where the "
                  "project uses pocketmesh; true: always; false: never).", type="bool", default=True)
    parser.addini("pocketmesh_allowed_hosts", "extra host names tests may always reach.", type="linelist",
                  default=[])
    parser.addini("pocketmesh_cassette_filter_headers", "extra header names kept out of cassettes.",
                  type="linelist", default=[])
    parser.addini("pocketmesh_cassette_filter_query", "extra query parameters kept out of cassettes.",
                  type="linelist", default=[])
    parser.addini("pocketmesh_cassette_filter_body", "JSON body keys kept out of cassettes.",
                  type="linelist", default=[])
    parser.addini("pocketmesh_mark_async_tests", "run `async def` tests under pytest-asyncio without "
                  "marking them (only while no asyncio_mode is configured).", type="bool", default=True)
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
    parser.addini("pocketmesh_simulator_model", "model of simulated users and judges (default gpt-4o-mini).",
                  default="")
    # -- properties: kept failing examples
    parser.addini("pocketmesh_failures_dir", "where flow properties save minimal failing examples, from the "
                  "rootdir ($POCKETMESH_FAILURES_DIR wins; empty: not saved).", default=".pocketmesh/failures")


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's, whose loop-scope warning it may quiet
def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS] = settings_from_config(config)
    config.stash[_UNQUIET] = quiet_loop_scope_warning(config, config.stash[SETTINGS].mark_async_tests)
    config.stash[_PREVIOUS_FAILURES_DIR] = set_default_failures_dir(config.stash[SETTINGS].failures_dir)
    activate(config.stash[SETTINGS])
    config.stash[USED_CASSETTES] = set()
    config.stash[_COLLECTED] = set()
    config.stash[_PARTIAL] = set()
    config.stash[TRANSCRIPTS] = {}
    config.stash[_GUARDED] = False


def pytest_sessionstart(session: pytest.Session) -> None:
    undo = session.config.stash.get(_UNQUIET, None)
    if undo is not None:
        undo()


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_GUARDED, False):
        guard.uninstall()
    loading = sys.modules.get("pocketmesh_testing.conversations.loading")
    if loading is not None:  # loaded only if the session imported an agent: else nothing to forget
        loading.forget_project_imports(config.rootpath)
    if _PREVIOUS_FAILURES_DIR in config.stash:
        set_default_failures_dir(config.stash[_PREVIOUS_FAILURES_DIR])
    if SETTINGS in config.stash:
        deactivate(config.stash[SETTINGS])


def _uses_the_harness(collector: pytest.Collector, obj: Any) -> bool:
    """Whether ``obj`` is an ``async def`` test of the harness: it asks for one of the plugin's
    fixtures, carries one of its markers (on itself, its class or module), or comes from the
    plugin's own kits (the persistence conformance tests a backend's test class inherits)."""
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
    if not inspect.iscoroutinefunction(inner):
        return False
    if str(getattr(inner, "__module__", "")).startswith("pocketmesh_testing."):
        return True
    try:
        asked = set(inspect.signature(inner).parameters)
    except (TypeError, ValueError):
        asked = set()
    marks = [*getattr(obj, "pytestmark", []), *collector.iter_markers()]
    for mark in marks:
        if mark.name == "usefixtures":
            asked.update(str(name) for name in mark.args)
    return not asked.isdisjoint(HARNESS_FIXTURES) or any(m.name in HARNESS_MARKERS for m in marks)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Generator[None, Any, Any]:
    # pytest-asyncio (strict by default) only runs marked coroutines; marking the ones that use
    # the plugin's fixtures here, before its own wrapper sees the item, saves users the asyncio
    # configuration. Other async tests are left as they are, so a project that does not use the
    # plugin sees no difference; a user who chose a mode (ini asyncio_mode, -o or --asyncio-mode)
    # keeps exactly what that mode does.
    config = collector.config
    if (
        config.stash[SETTINGS].mark_async_tests
        and _uses_the_harness(collector, obj)
        and isinstance(collector, (pytest.Module, pytest.Class))
        and collector.funcnamefilter(name)
        and not any(m.name in ("asyncio", "anyio", "trio") for m in getattr(obj, "pytestmark", []))
        and not any(True for n in ("asyncio", "anyio", "trio") for _ in collector.iter_markers(n))
    ):
        pytest.mark.asyncio(obj)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    if not item.config.stash.get(_GUARDED, False):
        return (yield)
    settings = item.config.stash[SETTINGS]
    blocking = item.get_closest_marker("allow_network") is None
    with guard.policy(enabled=blocking, allowed_hosts=settings.allowed_hosts):
        return (yield)


def _raised_here(info: pytest.ExceptionInfo[BaseException]) -> bool:
    """Whether a failure is a cassette miss, which :func:`pytest_runtest_call` raises in the test's place."""
    return bool(info.errisinstance(CassetteMissError))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    # A cassette miss inside an HTTP client surfaces as the client's own error ("Connection
    # error."), the miss itself only in a log. The test fails with the miss: that is the cause.
    # Only that re-raise hides this frame: any other failure reports exactly as without the plugin.
    __tracebackhide__ = _raised_here
    try:
        return (yield)
    except Exception as error:
        misses = item.stash.get(CASSETTE_MISSES, None)
        if not misses or isinstance(error, CassetteMissError):
            raise
        miss = CassetteMissError(str(misses[0]))
        first = (str(error).splitlines() or [""])[0]
        miss.add_note(f"The test then failed with {type(error).__name__}: {first[:200]}")
        raise miss from None


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
    config = session.config
    config.stash[_COLLECTED].update(Path(str(item.path)).resolve() for item in session.items)
    # The guard is for projects that use pocketmesh; any other project runs as if it were absent.
    mode = config.stash[SETTINGS].network_guard
    if not config.stash[_GUARDED] and (mode == "on" or mode == "auto" and session_uses_pocketmesh(session.items)):
        guard.install()
        config.stash[_GUARDED] = True


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    kind = collected_kind(file_path, parent.config.stash[SETTINGS], given=parent.session.isinitpath(file_path))
    if kind == "scenario":
        from pocketmesh_testing.conversations.simulation_file import ConversationFile

        return ConversationFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]
    if kind == "example":
        from pocketmesh_testing.properties.examples import ExampleFile

        return ExampleFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]
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
