"""Which YAML files are pocketmesh's: scenario files and kept failing examples, told apart from
any other YAML (game data, fixtures, CI settings) by their shape, so a project's own YAML under
``scenarios/`` is never taken for a test.

- a **scenario file** has, at the top, ``turns:`` (a list of turns), or ``scenarios:`` (a list
  of mappings, one of them with ``turns:`` that are a list of turns), or ``simulations:`` (a list
  of mappings, one of them with a ``persona`` or ``goal``). A list of turns is a list of
  mappings, one of which is plainly a turn: a ``user``, ``parts``, ``data``, ``expect`` or
  ``llm`` key and no key a turn does not have. With an ``agent:`` (``module:attr`` or an http(s)
  URL) at the top, a mapping with one of those keys is enough (a scenario file with a typo in
  its only turn), but an ``agent:`` never decides alone: ``turns: [1, 2]`` or ``turns: 20`` are
  some other file's;
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
_ALL_TURN_KEYS = _TURN_KEYS | {"stream", "message_id"}
_AGENT = re.compile(r"^(https?://\S+|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)$")
_TOP_LEVEL_LIST = re.compile(r"^(scenarios|turns|simulations)\s*:", re.MULTILINE)
_SCENARIO_KEY = re.compile(r"^\s*(-\s+)?(agent|user)\s*:", re.MULTILINE)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _is_turns(value: Any, *, agent: bool) -> bool:
    """A list of turn mappings: one plainly a turn (or, beside an agent, one with a turn key)."""
    if not isinstance(value, list) or not value or not all(isinstance(t, Mapping) for t in value):
        return False
    for turn in value:
        keys = {str(k) for k in turn}
        if keys & _TURN_KEYS and (agent or keys <= _ALL_TURN_KEYS):
            return True
    return False


def kind_of_document(data: Any) -> FileKind | None:
    """``"scenario"``, ``"example"`` or ``None`` for a loaded YAML document."""
    if not isinstance(data, Mapping):
        return None
    if isinstance(data.get("flow"), (str, type(None))) and data.get("property") in FLOW_PROPERTIES:
        return "example"
    agent = data.get("agent")
    has_agent = _is_agent(agent)
    if _is_turns(data.get("turns"), agent=has_agent):
        return "scenario"
    if any(_is_turns(s.get("turns"), agent=has_agent or _is_agent(s.get("agent")))
           for s in _mappings(data.get("scenarios"))):
        return "scenario"
    if any(isinstance(s.get("persona"), str) or isinstance(s.get("goal"), str)
           for s in _mappings(data.get("simulations"))):
        return "scenario"
    return None


def _is_agent(value: Any) -> bool:
    return isinstance(value, str) and bool(_AGENT.match(value))


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
