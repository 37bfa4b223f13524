"""Minimal failing examples as YAML files the team can keep, and replaying the flow ones.

Two shapes: an A2A conversation (a scenario file: ``agent``, ``skill``, ``turns`` of ``user`` +
``expect``) and a plain flow run (``flow`` as ``module:attr``, ``property``, ``actions`` as
``- Node: action`` items in order, the model's ``llm`` answers, the user's ``users`` turns, and
``expect``). Both replay in one step: ``pocketmesh replay FILE``, or moved under ``scenarios/``
where the plugin collects them as tests.

Where they go: the ``failures_dir`` argument, else ``$POCKETMESH_FAILURES_DIR``, else ini
``pocketmesh_failures_dir`` (default ``.pocketmesh/failures`` under the pytest rootdir), else
``.pocketmesh/failures`` under the current directory outside pytest. Any of them set to an
empty value means not written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_FAILURES_DIR",
    "FAILURES_DIR_ENV",
    "failures_dir",
    "load_target",
    "replay_flow_example",
    "set_default_failures_dir",
    "write_example",
]

FAILURES_DIR_ENV = "POCKETMESH_FAILURES_DIR"
"""Where properties write minimal failing examples when no ``failures_dir`` is given."""
DEFAULT_FAILURES_DIR = ".pocketmesh/failures"

_UNSET = object()
_default: Any = _UNSET


def set_default_failures_dir(directory: Path | None | object) -> Any:
    """Set where examples go when neither the argument nor the environment says (the plugin sets
    it from its ini key; None: nowhere). Returns the previous default, to restore."""
    global _default
    previous, _default = _default, directory
    return previous


def failures_dir(explicit: str | Path | None) -> Path | None:
    """The directory to write failing examples to (see the module docstring), or None for none.

    The first of the argument, the environment variable and the ini key that is set decides;
    set to an empty value, it means "not written" (it does not fall through to the next)."""
    chosen = explicit if explicit is not None else os.environ.get(FAILURES_DIR_ENV)
    if chosen is not None:
        return Path(chosen) if str(chosen).strip() else None
    if _default is _UNSET:
        return Path.cwd() / DEFAULT_FAILURES_DIR
    return _default  # type: ignore[no-any-return]


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


def run_document(
    shared: Mapping[str, Any] | None, params: Mapping[str, Any] | None, input_key: str,
    expected_errors: Sequence[type[BaseException]],
) -> dict[str, Any]:
    """How the property started the run, as far as it differs from the defaults."""
    out: dict[str, Any] = {}
    if shared:
        out["shared"] = dict(shared)
    if params:
        out["params"] = dict(params)
    if input_key != "input":
        out["input_key"] = input_key
    if expected_errors:
        out["expected_errors"] = [f"{e.__module__}.{e.__qualname__}" for e in expected_errors]
    return out


def load_target(spec: str) -> Any:
    """Import ``module:attr`` (dots in ``attr`` step into attributes or dict keys) and return it."""
    from pocketmesh_testing.properties.references import resolve

    return resolve(spec)


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
