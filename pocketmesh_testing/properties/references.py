"""Finding the import path (``module:attr``) of a flow, a flow factory or a dict of flows, so a saved
example names something ``pocketmesh replay`` can import.

In order:

1. a factory function defined at module level: ``module:qualname``;
2. a module attribute holding the object, or a dict attribute holding it as a value
   (``module:flows.support``), searched in the modules of the calling code, of the flow's nodes,
   then every loaded module;
3. a module-level function annotated ``-> Flow`` that takes no arguments and builds the same
   flow (same name, node ids and wiring), searched in the calling code's and the nodes' modules.
   Finding it calls those functions, once, when an example is being saved.

None when nothing is found: the caller then says which ``flow_ref`` to pass.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from types import FunctionType, ModuleType
from typing import Any

from pocketmesh import BaseNode, Flow

from pocketmesh_testing.properties.wiring import flow_edges, iter_nodes

__all__ = ["builds_flow", "import_path_of", "resolve"]

_OWN = ("pocketmesh_testing", "hypothesis", "_pytest", "pluggy", "asyncio", "threading", "concurrent")


def resolve(spec: str) -> Any:
    """Import ``module:attr`` from the current directory; dots in ``attr`` step into attributes, or into dict keys."""
    import importlib
    from pathlib import Path

    from pocketmesh.targets import attribute_of, split_target
    from pocketmesh_testing.conversations.loading import project_imports

    module_name, attr = split_target(spec, "myapp.flows:build_flow")
    with project_imports(Path.cwd()):  # as `pocketmesh serve` finds MODULE:ATTR, leaving sys.path as it was
        module = importlib.import_module(module_name)
    return attribute_of(module, attr, spec, keys=True)


def _importable(module: str | None, name: str) -> str | None:
    if not module or module == "__main__" or "<" in name:
        return None
    return f"{module}:{name}"


def _caller_modules() -> list[ModuleType]:
    found: list[ModuleType] = []
    for frame_info in inspect.stack(context=0)[2:]:
        name = frame_info.frame.f_globals.get("__name__", "")
        module = sys.modules.get(name)
        if module is not None and not name.startswith(_OWN) and module not in found:
            found.append(module)
    return found


def _node_modules(flow: Flow) -> list[ModuleType]:
    names = {type(flow).__module__} | {type(node).__module__ for _, node in iter_nodes(flow)}
    runtime = {BaseNode.__module__, Flow.__module__}  # plain BaseNode / Flow say nothing of the project
    return [sys.modules[n] for n in sorted(names - runtime) if n in sys.modules and not n.startswith(_OWN)]


def _attributes(module: ModuleType) -> Iterator[tuple[str, Any]]:
    try:
        yield from list(vars(module).items())
    except TypeError:
        return


def _items(mapping: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    try:
        return list(mapping.items())
    except Exception:  # an exotic mapping in some module: not where flows live
        return []


def _holder(target: Any, modules: list[ModuleType]) -> str | None:
    """``module:attr`` (or ``module:attr.key``) of a module attribute that is, or holds, ``target``."""
    for module in modules:
        for name, value in _attributes(module):
            if name.startswith("_"):
                continue
            if value is target:
                return _importable(module.__name__, name)
            if isinstance(value, Mapping) and not isinstance(value, type):
                for key, item in _items(value):
                    if item is target and isinstance(key, str) and key.isidentifier():
                        return _importable(module.__name__, f"{name}.{key}")
    return None


def _same_flows(target: Mapping[str, Any], modules: list[ModuleType]) -> str | None:
    """A module-level dict with the very flows of ``target`` (a copy of it was passed around)."""
    wanted = {k: id(v) for k, v in target.items()}
    for module in modules:
        for name, value in _attributes(module):
            if isinstance(value, Mapping) and not name.startswith("_") and len(value) == len(wanted):
                items = dict(_items(value))
                if all(k in items and id(items[k]) == i for k, i in wanted.items()):
                    return _importable(module.__name__, name)
    return None


def _shape(flow: Flow) -> tuple[Any, ...]:
    return flow.name, sorted(node_id for node_id, _ in iter_nodes(flow)), sorted(flow_edges(flow))


def builds_flow(fn: FunctionType) -> bool:
    """True for a function that takes no arguments and is annotated to return a Flow."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    if any(p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()):
        return False
    annotation = signature.return_annotation
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] in ("Flow", "BatchFlow")
    return isinstance(annotation, type) and issubclass(annotation, Flow)


def _builder(flow: Flow, modules: list[ModuleType]) -> str | None:
    shape = _shape(flow)
    for module in modules:
        for name, value in _attributes(module):
            if not isinstance(value, FunctionType) or not builds_flow(value):
                continue
            path = _importable(value.__module__, value.__qualname__)
            if path is None:
                continue
            try:
                built = value()
            except Exception:  # a builder that needs its world (a client, a key) is not the one
                continue
            if isinstance(built, Flow) and _shape(built) == shape:
                return path
    return None


def import_path_of(target: Flow | Mapping[str, BaseNode] | Callable[[], Flow]) -> str | None:
    """The ``module:attr`` that imports ``target`` (see the module docstring), or None."""
    callers = _caller_modules()
    if isinstance(target, FunctionType):
        return _importable(target.__module__, target.__qualname__)
    near = callers + (_node_modules(target) if isinstance(target, Flow) else [])
    found = _holder(target, near) or _holder(target, list(sys.modules.values()))
    if found is None and isinstance(target, Mapping):
        found = _same_flows(target, near) or _same_flows(target, list(sys.modules.values()))
    if found is None and isinstance(target, Flow):
        found = _builder(target, near)
    return found
