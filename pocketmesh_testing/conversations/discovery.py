"""Which YAML files are pocketmesh's: scenario files and kept failing examples, told apart from
any other YAML (game data, fixtures, CI settings) by their shape, so a project's own YAML under
``scenarios/`` is never taken for a test.

- a **scenario file** has, at the top, ``scenarios:`` (a list whose entries have ``turns``), or
  ``turns:`` (a list of turns with ``user``, ``parts``, ``data``, ``expect`` or ``llm``), or
  ``simulations:`` (a list of simulated users), or an ``agent:`` (``module:attr`` or an http(s)
  URL) beside one of those keys;
- a **flow example** (a minimal failing example a property saved) has ``flow:`` and a
  ``property:`` of ``terminates`` or ``resume-idempotent``.

A file that is not valid YAML counts as a scenario file when its text has a top-level
``scenarios:`` or ``turns:`` line and an ``agent:`` or ``user:`` key, so its author gets the
syntax error instead of silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = ["FLOW_PROPERTIES", "FileKind", "file_kind", "kind_of_document"]

FileKind = Literal["scenario", "example"]
FLOW_PROPERTIES = ("terminates", "resume-idempotent")
_TURN_KEYS = frozenset({"user", "parts", "data", "expect", "llm"})
_AGENT = re.compile(r"^(https?://\S+|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)$")
_TOP_LEVEL_LIST = re.compile(r"^(scenarios|turns|simulations)\s*:", re.MULTILINE)
_SCENARIO_KEY = re.compile(r"^\s*(-\s+)?(agent|user)\s*:", re.MULTILINE)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def kind_of_document(data: Any) -> FileKind | None:
    """``"scenario"``, ``"example"`` or ``None`` for a loaded YAML document."""
    if not isinstance(data, Mapping):
        return None
    if isinstance(data.get("flow"), (str, type(None))) and data.get("property") in FLOW_PROPERTIES:
        return "example"
    lists = [k for k in ("scenarios", "turns", "simulations") if isinstance(data.get(k), list)]
    if not lists:
        return None
    agent = data.get("agent")
    if isinstance(agent, str) and _AGENT.match(agent):
        return "scenario"
    if any("turns" in s or "simulations" in s for s in _mappings(data.get("scenarios"))):
        return "scenario"
    if any(_TURN_KEYS & set(t) for t in _mappings(data.get("turns"))):
        return "scenario"
    if any("persona" in s or "goal" in s for s in _mappings(data.get("simulations"))):
        return "scenario"
    return None


def file_kind(path: Path) -> FileKind | None:
    """What the YAML file at ``path`` is to pocketmesh, judged by its content; None: not ours."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        looks_like_one = _TOP_LEVEL_LIST.search(text) and _SCENARIO_KEY.search(text)
        return "scenario" if looks_like_one else None
    return kind_of_document(data)
