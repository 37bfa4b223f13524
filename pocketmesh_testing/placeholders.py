"""Stand-ins for the harness's fixtures, registered when its requirements are missing: asking
for one fails the test with a message naming ``pocketmesh[testing]``. They define no hook, no
option and no autouse fixture, so tests that do not ask for them run as without the plugin."""

from __future__ import annotations

from typing import NoReturn

import pytest

from pocketmesh_testing.requirements import install_hint

__all__ = [
    "a2a_agent",
    "fake_llm",
    "llm_cassette",
    "memory_persistence",
    "persistence",
    "remote_agent",
    "shared_snapshot",
    "sqlite_persistence",
]


def _unavailable(name: str) -> NoReturn:
    pytest.fail(install_hint(f"the fixture {name!r}"), pytrace=False)


@pytest.fixture
def fake_llm() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("fake_llm")


@pytest.fixture
def llm_cassette() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("llm_cassette")


@pytest.fixture
def memory_persistence() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("memory_persistence")


@pytest.fixture
def sqlite_persistence() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("sqlite_persistence")


@pytest.fixture
def persistence() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("persistence")


@pytest.fixture
def a2a_agent() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("a2a_agent")


@pytest.fixture
def remote_agent() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("remote_agent")


@pytest.fixture
def shared_snapshot() -> None:
    """Needs ``pip install 'pocketmesh[testing]'``."""
    _unavailable("shared_snapshot")
