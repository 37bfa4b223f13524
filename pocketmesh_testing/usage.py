"""Whether a test session belongs to a project that uses pocketmesh, judged from what it collected.

The plugin's network guard applies to such sessions only: installing pocketmesh must not change
how an unrelated project's tests run. A session uses pocketmesh when one of its collected items

- is one of the plugin's own (a scenario, a simulation, a kept flow example),
- asks for one of the plugin's fixtures (the plugin's own definition, not a project fixture
  that happens to share its name, such as ``persistence``),
- carries one of the plugin's markers (``allow_network`` aside: a marker that only turns the
  guard off says nothing about wanting it on), or
- comes from a test module that references pocketmesh: imports ``pocketmesh`` or
  ``pocketmesh_testing`` (or something from them), or holds an object defined in them or an
  instance or subclass of one of their classes.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pytest

__all__ = ["HARNESS_FIXTURES", "HARNESS_MARKERS", "item_uses_pocketmesh", "session_uses_pocketmesh"]

HARNESS_FIXTURES = frozenset({
    "a2a_agent", "fake_llm", "llm_cassette", "memory_persistence", "persistence", "remote_agent",
    "shared_snapshot", "shared_snapshot_internal", "sqlite_persistence",
})
"""The plugin's fixtures: an ``async def`` test that asks for one of them is run by the plugin."""

HARNESS_MARKERS = frozenset({"allow_network", "flow_property", "llm_cassette", "scenario", "simulation"})
"""The plugin's markers: an ``async def`` test marked with one of them is run by the plugin too."""

_EVIDENCE_MARKERS = HARNESS_MARKERS - {"allow_network"}
_PACKAGES = ("pocketmesh", "pocketmesh_testing")


def _ours(module_name: Any) -> bool:
    return isinstance(module_name, str) and module_name.partition(".")[0] in _PACKAGES


def _from_pocketmesh(value: Any) -> bool:
    """A pocketmesh module, or an object defined in one, or an instance or subclass of one's class."""
    if isinstance(value, ModuleType):
        return _ours(value.__name__)
    try:
        if inspect.isclass(value):
            return any(_ours(getattr(c, "__module__", None)) for c in value.__mro__)
        if inspect.isfunction(value) or inspect.isbuiltin(value):
            return _ours(getattr(value, "__module__", None))
        return any(_ours(c.__module__) for c in type(value).__mro__)
    except Exception:  # an exotic object that breaks on attribute access is not pocketmesh's
        return False


def _module_references_pocketmesh(module: ModuleType) -> bool:
    try:
        values = list(vars(module).values())
    except TypeError:
        return False
    return any(_from_pocketmesh(value) for value in values)


def _asks_for_a_harness_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    definitions = getattr(info, "name2fixturedefs", {}) or {}
    for name in HARNESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        chosen = definitions.get(name) or ()
        # The last definition is the one the item gets: a project's own fixture of the same name wins.
        if chosen and _ours(getattr(getattr(chosen[-1], "func", None), "__module__", None)):
            return True
    return False


def item_uses_pocketmesh(item: pytest.Item, modules: dict[str, bool] | None = None) -> bool:
    """Whether ``item`` shows its project uses pocketmesh (see the module docstring).

    ``modules`` caches the verdict per test module across the items of a session."""
    if _ours(type(item).__module__):
        return True
    if any(item.get_closest_marker(name) is not None for name in _EVIDENCE_MARKERS):
        return True
    if _asks_for_a_harness_fixture(item):
        return True
    parent = item.getparent(pytest.Module)
    module = getattr(parent, "obj", None) if parent is not None else None
    if not isinstance(module, ModuleType):
        return False
    cache = {} if modules is None else modules
    if module.__name__ not in cache:
        cache[module.__name__] = _module_references_pocketmesh(module)
    return cache[module.__name__]


def session_uses_pocketmesh(items: Iterable[pytest.Item]) -> bool:
    """Whether any of the collected ``items`` shows the project uses pocketmesh."""
    modules: dict[str, bool] = {}
    return any(item_uses_pocketmesh(item, modules) for item in items)
