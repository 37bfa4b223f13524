"""The plugin's resolved configuration, kept on ``config.stash``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pocketmesh_testing.cassettes import (
    DEFAULT_FILTER_HEADERS,
    DEFAULT_FILTER_QUERY,
    CassetteSettings,
    resolve_record_mode,
)

__all__ = ["CALL_FAILED", "SETTINGS", "USED_CASSETTES", "PluginSettings", "settings_from_config", "settings_of"]


@dataclass(frozen=True)
class PluginSettings:
    """What the options and ini keys decided for this session."""

    network_guard: bool = True
    allowed_hosts: tuple[str, ...] = ()
    cassette: CassetteSettings = field(default_factory=CassetteSettings)
    mark_async_tests: bool = True
    report_unused_cassettes: bool = False


SETTINGS = pytest.StashKey[PluginSettings]()
USED_CASSETTES = pytest.StashKey[set[Path]]()
CALL_FAILED = pytest.StashKey[bool]()


def settings_from_config(config: pytest.Config) -> PluginSettings:
    """Read the ``--pocketmesh-*`` options and ``pocketmesh_*`` ini keys."""
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
        network_guard=bool(config.getini("pocketmesh_network_guard"))
        and not config.getoption("pocketmesh_allow_network"),
        allowed_hosts=lines("pocketmesh_allowed_hosts"),
        cassette=cassette,
        mark_async_tests=bool(config.getini("pocketmesh_mark_async_tests")),
        report_unused_cassettes=bool(config.getoption("pocketmesh_unused_cassettes")),
    )


def settings_of(config: pytest.Config) -> PluginSettings:
    """The settings stored by the plugin at configure time."""
    return config.stash[SETTINGS]
