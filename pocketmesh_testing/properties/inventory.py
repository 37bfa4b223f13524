"""Which flows a test session defines, so the gate can show the ones no test ever ran.

A flow counts as defined when a collected scenario file's in-process agent serves it, or a
collected test module holds it (a module-level ``Flow``, a dict of flows, or a function
annotated ``-> Flow`` that takes no arguments, called once here). Each comes with the label the
reports show it under: a named flow's name; for a flow left with the default name (``Flow``),
the skill id it is served as, else the ``module:attr`` it was found under. Flows are told apart
by name and graph (:func:`pocketmesh_testing.properties.edges.flow_key`), as edge coverage
records them.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from types import FunctionType, ModuleType
from typing import Any

from pocketmesh import Flow

from pocketmesh_testing.properties.edges import flow_key
from pocketmesh_testing.properties.references import builds_flow

__all__ = ["defined_flows"]

_DEFAULT_NAMES = ("Flow", "BatchFlow")


def _label(flow: Flow, found_as: str) -> str:
    return found_as if flow.name in _DEFAULT_NAMES else flow.name


def _from_module(module: ModuleType) -> Iterator[tuple[str, Flow]]:
    for name, value in list(vars(module).items()):
        if name.startswith("_"):
            continue
        where = f"{module.__name__}:{name}"
        if isinstance(value, Flow):
            yield where, value
        elif isinstance(value, Mapping) and value and all(isinstance(v, Flow) for v in value.values()):
            yield from ((f"{where}.{key}", flow) for key, flow in value.items())
        elif isinstance(value, FunctionType) and builds_flow(value):
            try:
                built = value()
            except Exception:  # a builder that needs its world is left out, not a gate failure
                continue
            if isinstance(built, Flow):
                yield where, built


def defined_flows(items: Iterable[Any]) -> list[tuple[str, Flow]]:
    """``(label, flow)`` for each flow the collected ``items``' scenario agents and modules define."""
    modules: dict[str, ModuleType] = {}
    agents: set[str] = set()
    for item in items:
        module = getattr(item, "module", None)
        if inspect.ismodule(module):
            modules.setdefault(module.__name__, module)
        if getattr(item, "scenario", None) is not None:
            spec = _in_process_spec(item)
            if spec:
                agents.add(spec)
    found: dict[str, tuple[str, Flow]] = {}
    # Scenario agents first: a skill id is the name a flow is known by where it is served.
    for spec in sorted(agents):
        for skill, flow in _agent_flows(spec, items):
            found.setdefault(flow_key(flow), (_label(flow, str(skill)), flow))
    for module in modules.values():
        for where, flow in _from_module(module):
            found.setdefault(flow_key(flow), (_label(flow, where), flow))
    return sorted(found.values(), key=lambda pair: pair[0])


def _in_process_spec(item: Any) -> str | None:
    from pocketmesh_testing.conversations.collection import resolve_target

    try:
        target = resolve_target(item.config, item.scenario)
    except Exception:  # a scenario without an agent reports that itself when it runs
        return None
    return target.spec if target.url is None else None


def _agent_flows(spec: str, items: Iterable[Any]) -> list[tuple[str, Flow]]:
    from pocketmesh_testing.conversations.loading import load_flows

    root = next((i.config.rootpath for i in items if getattr(i, "config", None) is not None), None)
    try:
        return [(skill, f) for skill, f in load_flows(spec, root).items() if isinstance(f, Flow)]
    except Exception:  # its scenarios fail with the reason
        return []
