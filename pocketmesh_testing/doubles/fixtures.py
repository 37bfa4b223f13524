"""The doubles room's fixtures: the fake LLM, cassettes and persistence backends; ``plugin.py``
registers this module when the harness is installed."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pocketmesh_testing.doubles.fake_llm import FakeLLM
from pocketmesh_testing.doubles.network import guard
from pocketmesh_testing.settings import CALL_FAILED, CASSETTE_MISSES, USED_CASSETTES, settings_of

__all__ = [
    "fake_llm",
    "llm_cassette",
    "memory_persistence",
    "persistence",
    "sqlite_persistence",
]


def _call_failed(request: pytest.FixtureRequest) -> bool:
    # Teardown checks only add noise once the test itself has failed.
    return request.node.stash.get(CALL_FAILED, False)


@pytest.fixture
def fake_llm(request: pytest.FixtureRequest) -> Iterator[FakeLLM]:
    """A scripted, strict OpenAI-compatible model; unused replies fail the test at teardown."""
    fake = FakeLLM()
    try:
        yield fake
    finally:
        fake.close()
    if not _call_failed(request):
        fake.verify()


@pytest.fixture
def llm_cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Record or replay this test's HTTP traffic in ``cassettes/<module>/<test>.yaml``."""
    from pocketmesh_testing.doubles.cassettes import default_cassette_path, use_llm_cassette

    settings = settings_of(request.config)
    test_file = Path(str(request.node.path))
    path = default_cassette_path(test_file, request.node.name)
    marker = request.node.get_closest_marker("llm_cassette")
    cassette_settings = settings.cassette
    if marker is not None:
        chosen = marker.kwargs.get("path", marker.args[0] if marker.args else None)
        if chosen is not None:
            chosen_path = Path(chosen)
            path = chosen_path if chosen_path.is_absolute() else path.parent / chosen_path
        if "record_mode" in marker.kwargs:
            from dataclasses import replace

            cassette_settings = replace(cassette_settings, record_mode=marker.kwargs["record_mode"])
    with use_llm_cassette(path, cassette_settings) as cassette:
        request.config.stash[USED_CASSETTES].add(path.resolve())
        request.node.stash[CASSETTE_MISSES] = cassette.misses
        # Recording needs the real network; replay-only cassettes keep the guard on.
        with guard.policy(enabled=guard.enabled and not cassette.may_record):
            yield cassette
    if cassette.misses and not _call_failed(request):
        raise cassette.misses[0]


@pytest.fixture(autouse=True)
def _pocketmesh_cassette_marker(request: pytest.FixtureRequest) -> None:
    """Activate ``llm_cassette`` for tests marked ``@pytest.mark.llm_cassette``."""
    if request.node.get_closest_marker("llm_cassette") is not None:
        request.getfixturevalue("llm_cassette")


def _close(backend: Any) -> None:
    closer = getattr(backend, "aclose", None) or getattr(backend, "close", None)
    if closer is None:
        return
    result = closer()
    if inspect.isawaitable(result):
        asyncio.run(_await(result))


async def _await(awaitable: Any) -> None:
    await awaitable


@pytest.fixture
def memory_persistence() -> Any:
    """A fresh ``pocketmesh.InMemoryPersistence``."""
    from pocketmesh import InMemoryPersistence

    return InMemoryPersistence()


@pytest.fixture
def sqlite_persistence(tmp_path: Path) -> Iterator[Any]:
    """A ``pocketmesh.SQLitePersistence`` on a temporary file, closed after the test."""
    from pocketmesh import SQLitePersistence

    backend = SQLitePersistence(path=str(tmp_path / "pocketmesh.sqlite"))
    yield backend
    _close(backend)


@pytest.fixture(params=["memory", "sqlite"])
def persistence(request: pytest.FixtureRequest) -> Any:
    """Each built-in persistence backend in turn (in-memory, then SQLite)."""
    return request.getfixturevalue(f"{request.param}_persistence")
