"""The plugin's resolved configuration, kept on ``config.stash``: one object for all three rooms.

Reading it imports nothing heavy, so registering the plugin stays cheap: the A2A stack loads
only when a scenario file is collected or a test asks for an agent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pocketmesh_testing.async_tests import asyncio_mode_chosen, user_set_ini
from pocketmesh_testing.conversations.discovery import FileKind, file_kind
from pocketmesh_testing.doubles.cassettes import (
    DEFAULT_FILTER_HEADERS,
    DEFAULT_FILTER_QUERY,
    CassetteSettings,
    resolve_record_mode,
)

__all__ = [
    "CALL_FAILED",
    "CASSETTE_MISSES",
    "SETTINGS",
    "TRANSCRIPTS",
    "USED_CASSETTES",
    "PluginSettings",
    "activate",
    "active_settings",
    "collected_kind",
    "deactivate",
    "is_scenario_file",
    "settings_from_config",
    "settings_of",
]


@dataclass(frozen=True)
class PluginSettings:
    """What the options, ini keys and environment decided for this session."""

    network_guard: str = "auto"
    """``"on"`` (ini ``pocketmesh_network_guard = true``), ``"off"`` (ini false, or
    ``--pocketmesh-allow-network``) or ``"auto"``: on where the project uses pocketmesh."""
    allowed_hosts: tuple[str, ...] = ()
    cassette: CassetteSettings = field(default_factory=CassetteSettings)
    mark_async_tests: bool = True
    """Mark unmarked ``async def`` tests for pytest-asyncio: on unless turned off, or the user chose
    an ``asyncio_mode`` (that choice is theirs to keep)."""
    report_unused_cassettes: bool = False
    scenario_dirs: tuple[Path, ...] = ()
    """Resolved directories searched for scenario files (ini ``pocketmesh_scenario_dirs``; empty: none)."""
    agent_urls: tuple[str, ...] = ()
    """``[AGENT=]URL`` entries: scenarios play against these live agents."""
    agent_dbs: tuple[str, ...] = ()
    """``[AGENT=]PATH`` entries: the live agents' SQLite files, for ``shared`` checks."""
    show_transcripts: bool = False
    simulator_model: str = ""
    """Model of simulated users and judges (ini ``pocketmesh_simulator_model``); empty: the default."""
    failures_dir: Path | None = None
    """Where properties keep minimal failing examples (ini ``pocketmesh_failures_dir``; None: nowhere)."""


SETTINGS = pytest.StashKey[PluginSettings]()
USED_CASSETTES = pytest.StashKey[set[Path]]()
CALL_FAILED = pytest.StashKey[bool]()
CASSETTE_MISSES = pytest.StashKey[list[Any]]()
"""Misses of the cassette a test uses: a test failing after one fails with the miss as its message."""
TRANSCRIPTS = pytest.StashKey[dict[str, list[str]]]()
"""Transcript lines of every scenario played in the session, by node id."""


def _setting(config: pytest.Config, option: str, env: str, ini: str) -> tuple[str, ...]:
    """The command line first, then the environment (comma or space separated), then the ini."""
    given = config.getoption(option, default=None) or []
    if given:
        return tuple(given)
    if os.environ.get(env):
        return tuple(v for v in os.environ[env].replace(",", " ").split() if v)
    return tuple(str(v) for v in config.getini(ini) or [])


def settings_from_config(config: pytest.Config) -> PluginSettings:
    """Read the ``--pocketmesh-*`` options, ``pocketmesh_*`` ini keys and environment."""
    def lines(name: str) -> tuple[str, ...]:
        return tuple(str(v).strip().lower() for v in config.getini(name) if str(v).strip())

    record_mode = resolve_record_mode(
        config.getoption("pocketmesh_record_mode"), config.getini("pocketmesh_record_mode") or None, os.environ
    )
    cassette = CassetteSettings(
        record_mode=record_mode,
        filter_headers=DEFAULT_FILTER_HEADERS + lines("pocketmesh_cassette_filter_headers"),
        filter_query=DEFAULT_FILTER_QUERY + lines("pocketmesh_cassette_filter_query"),
        filter_body=tuple(v.strip() for v in config.getini("pocketmesh_cassette_filter_body") if v.strip()),
    )
    return PluginSettings(
        network_guard=_network_guard(config),
        allowed_hosts=lines("pocketmesh_allowed_hosts"),
        cassette=cassette,
        mark_async_tests=bool(config.getini("pocketmesh_mark_async_tests")) and not asyncio_mode_chosen(config),
        report_unused_cassettes=bool(config.getoption("pocketmesh_unused_cassettes")),
        # An empty value means no scenario directories at all (collection off), not the default.
        scenario_dirs=tuple((config.rootpath / str(entry)).resolve() for entry in config.getini("pocketmesh_scenario_dirs")),
        agent_urls=_setting(config, "pocketmesh_agent_url", "POCKETMESH_AGENT_URL", "pocketmesh_agent_url"),
        agent_dbs=_setting(config, "pocketmesh_agent_db", "POCKETMESH_AGENT_DB", "pocketmesh_agent_db"),
        show_transcripts=bool(config.getoption("pocketmesh_transcripts", default=False)),
        simulator_model=str(config.getini("pocketmesh_simulator_model") or "").strip(),
        failures_dir=_directory(config, "pocketmesh_failures_dir"),
    )


def _network_guard(config: pytest.Config) -> str:
    """``"off"``, ``"on"`` or ``"auto"`` (see :attr:`PluginSettings.network_guard`)."""
    if config.getoption("pocketmesh_allow_network"):
        return "off"
    if not user_set_ini(config, "pocketmesh_network_guard"):
        return "auto"
    return "on" if config.getini("pocketmesh_network_guard") else "off"


def _directory(config: pytest.Config, ini: str) -> Path | None:
    """An ini key naming a directory from the rootdir; None when set empty."""
    value = str(config.getini(ini) or "").strip()
    return (config.rootpath / value).resolve() if value else None


_ACTIVE: list[PluginSettings] = []
"""Settings of the pytest sessions under way, innermost last (pytester runs nest)."""


def activate(settings: PluginSettings) -> None:
    """Make ``settings`` what code outside fixtures (``simulate()``, say) reads, until :func:`deactivate`."""
    _ACTIVE.append(settings)


def deactivate(settings: PluginSettings) -> None:
    """Undo :func:`activate`."""
    for index in range(len(_ACTIVE) - 1, -1, -1):
        if _ACTIVE[index] is settings:
            del _ACTIVE[index]
            return


def active_settings() -> PluginSettings | None:
    """The settings of the innermost pytest session under way, or ``None`` outside pytest."""
    return _ACTIVE[-1] if _ACTIVE else None


def settings_of(config: pytest.Config) -> PluginSettings:
    """The settings stored by the plugin at configure time."""
    return config.stash[SETTINGS]


def is_scenario_file(path: Path, settings: PluginSettings) -> bool:
    """True for a scenario file (by its content) under a scenario directory; see :func:`collected_kind`."""
    return _in_scenario_dirs(path, settings) and file_kind(path) == "scenario"


def collected_kind(path: Path, settings: PluginSettings, *, given: bool = False) -> FileKind | None:
    """What the plugin collects ``path`` as: ``"scenario"``, ``"example"`` or None (not its file).

    A ``*.yaml`` / ``*.yml`` file counts when it lies under a scenario directory (not in a
    ``cassettes`` or ``__*`` folder) or was named on the command line (``given``), and its content
    has the shape of a scenario file or a kept flow example; any other YAML is left alone.
    """
    if path.suffix not in (".yaml", ".yml") or not (given or _in_scenario_dirs(path, settings)):
        return None
    return file_kind(path)


def _in_scenario_dirs(path: Path, settings: PluginSettings) -> bool:
    if path.suffix not in (".yaml", ".yml"):
        return False
    resolved = path.resolve()
    for base in settings.scenario_dirs:
        try:
            inner = resolved.relative_to(base)
        except ValueError:
            continue
        return not any(p == "cassettes" or p.startswith("__") for p in inner.parts[:-1])
    return False
