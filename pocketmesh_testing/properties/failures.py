"""Minimal failing examples as YAML files the team can keep, and replaying the flow ones.

Two shapes: an A2A conversation (``agent``, ``skill``, ``turns`` of ``send`` + ``expect``) and a
plain flow run (``flow``, ``actions`` as ``- Node: action`` items in order, the model's ``llm``
answers, the user's ``users`` turns, and ``expect``).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["FAILURES_DIR_ENV", "failures_dir", "load_target", "replay_flow_example", "write_example"]

FAILURES_DIR_ENV = "POCKETMESH_FAILURES_DIR"
"""Where properties write minimal failing examples when no ``failures_dir`` is given."""


def failures_dir(explicit: str | Path | None) -> Path | None:
    """The directory to write failing examples to: the argument, else ``$POCKETMESH_FAILURES_DIR``."""
    chosen = explicit if explicit is not None else os.environ.get(FAILURES_DIR_ENV)
    return Path(chosen) if chosen else None


def write_example(directory: Path, name: str, document: Mapping[str, Any]) -> Path:
    """Write ``document`` as ``<directory>/<name>.yaml`` (a safe file name); returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "example"
    path = directory / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def world_document(llm: Sequence[Any], users: Sequence[str]) -> dict[str, Any]:
    """The outside world as YAML-ready data: text answers, ``{status: N}`` failures, user turns."""
    answers = [e if isinstance(e, str) else {"status": e.status} for e in llm]
    return {"llm": answers, "users": list(users)}


def load_target(spec: str) -> Any:
    """Import ``module:attr`` (dots allowed in ``attr``) and return the attribute."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:attr', got {spec!r}; e.g. 'myapp.flows:support_flow'.")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


async def replay_flow_example(example: Mapping[str, Any] | str | Path, *, llm: Any = None) -> Any:
    """Run a kept flow example again (its actions and world); returns the last ``RunResult``.

    ``flow`` may name a Flow or a function returning one. Pass the ``FakeLLM`` the flow's nodes
    talk to as ``llm`` for the example's model answers to be replayed.
    """
    from collections import deque

    from pocketmesh import Flow, InMemoryPersistence

    from pocketmesh_testing.properties.scripted import Driver, driving, scripted_flow
    from pocketmesh_testing.properties.strategies import LLMFailure, OutsideWorld

    data = yaml.safe_load(Path(example).read_text(encoding="utf-8")) if isinstance(example, (str, Path)) else example
    target = load_target(str(data["flow"]))
    flow = target if isinstance(target, Flow) else target()
    script: dict[str, list[str]] = {}
    for item in data.get("actions") or []:
        ((node, action),) = dict(item).items()
        script.setdefault(str(node), []).append(str(action))
    answers = tuple(LLMFailure(int(a["status"])) if isinstance(a, dict) else str(a) for a in data.get("llm") or [])
    world = OutsideWorld(answers, tuple(str(u) for u in data.get("users") or []))
    if llm is not None:
        world.install(llm)
    store = InMemoryPersistence()
    users = deque(world.users)
    mirror = scripted_flow(flow, max_steps=data.get("max_steps") or None)
    with driving(Driver(script)):
        result = await mirror.run(dict(data.get("shared") or {}), run_id="replay", persistence=store)
        while result.status == "input-required" and users:
            shared = {**result.shared, data.get("input_key", "input"): users.popleft()}
            result = await mirror.run(shared, run_id="replay", persistence=store)
    return result
