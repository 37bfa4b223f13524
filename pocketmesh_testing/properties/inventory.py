"""Which flows a test session defines, so the gate can show the ones no test ever ran.

A flow counts as defined when a collected test module holds it (a module-level ``Flow``, a dict
of flows, or a function annotated ``-> Flow`` that takes no arguments, called once here), or
when a collected scenario file's in-process agent serves it. Flows are told apart by name, as
edge coverage records them.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from types import FunctionType, ModuleType
from typing import Any

from pocketmesh import Flow

from pocketmesh_testing.properties.references import builds_flow

__all__ = ["defined_flows"]


def _from_module(module: ModuleType) -> Iterator[Flow]:
    for name, value in list(vars(module).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, Flow):
            yield value
        elif isinstance(value, Mapping) and value and all(isinstance(v, Flow) for v in value.values()):
            yield from value.values()
        elif isinstance(value, FunctionType) and builds_flow(value):
            try:
                built = value()
            except Exception:  # a builder that needs its world is left out, not a gate failure
                continue
            if isinstance(built, Flow):
                yield built


def defined_flows(items: Iterable[Any]) -> list[Flow]:
    """The flows the collected ``items``' modules and scenario agents define, one per name."""
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
    found: dict[str, Flow] = {}
    for module in modules.values():
        for flow in _from_module(module):
            found.setdefault(flow.name, flow)
    for spec in sorted(agents):
        for flow in _agent_flows(spec, items):
            found.setdefault(flow.name, flow)
    return [found[name] for name in sorted(found)]


def _in_process_spec(item: Any) -> str | None:
    from pocketmesh_testing.conversations.collection import resolve_target

    try:
        target = resolve_target(item.config, item.scenario)
    except Exception:  # a scenario without an agent reports that itself when it runs
        return None
    return target.spec if target.url is None else None


def _agent_flows(spec: str, items: Iterable[Any]) -> list[Flow]:
    from pocketmesh_testing.conversations.loading import load_flows

    root = next((i.config.rootpath for i in items if getattr(i, "config", None) is not None), None)
    try:
        return [f for f in load_flows(spec, root).values() if isinstance(f, Flow)]
    except Exception:  # its scenarios fail with the reason
        return []
