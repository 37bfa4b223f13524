"""Scenario files: YAML read safely with line numbers, checked against the published schema.

The schema ships beside this module as ``schema.json``. Any problem with a file —
YAML syntax, a schema violation, a bad regex, two scenarios with one name — is one
:class:`ScenarioFormatError` naming the file, the line and the field.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["Scenario", "ScenarioFormatError", "Turn", "load_scenarios", "schema"]

SCHEMA_FILE = Path(__file__).with_name("schema.json")
FieldPath = tuple[str | int, ...]


class ScenarioFormatError(ValueError):
    """A scenario file that cannot be used, with where and why."""

    def __init__(self, path: Path, line: int | None, field_path: str, message: str) -> None:
        self.path, self.line, self.field, self.message = path, line, field_path, message
        super().__init__(self.describe(str(path)))

    def describe(self, shown_path: str) -> str:
        """``file:line: field: message``, with the file shown as ``shown_path``."""
        where = f"{shown_path}:{self.line}" if self.line else shown_path
        return f"{where}: {self.field or '(file)'}: {self.message}"


@dataclass
class Turn:
    """One user message and the expectations on its reply."""

    index: int
    parts: list[dict[str, Any]]
    expect: dict[str, Any]
    llm: list[Any] | None = None
    stream: bool = False
    message_id: str | None = None
    line: int = 0
    field_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class Scenario:
    """A conversation to play against an agent."""

    name: str
    path: Path
    turns: list[Turn]
    agent: str | None = None
    skill: str | None = None
    cassette: str | None = None
    skip: str | None = None
    description: str = ""
    line: int = 1
    agent_line: int | None = None
    """Line of the ``agent:`` this scenario uses (its own, or the file's)."""

    @property
    def uses_fake_llm(self) -> bool:
        """True when any turn scripts fake LLM replies."""
        return any(t.llm is not None for t in self.turns)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The scenario file JSON schema (draft 2020-12)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# -- YAML with positions ---------------------------------------------------------------------


def _load_yaml(text: str, path: Path) -> tuple[Any, dict[FieldPath, int]]:
    """Safe-load ``text``; also return the 1-based line of every key and list item."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioFormatError(path, 1, "", "the file is empty; a scenario needs at least `turns`.")
        lines: dict[FieldPath, int] = {(): node.start_mark.line + 1}
        return _convert(loader, node, (), lines, path), lines
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(p) for p in (error.context, error.problem) if p)
        raise ScenarioFormatError(path, line, "", f"not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ScenarioFormatError(path, None, "", f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


def _convert(loader: yaml.SafeLoader, node: yaml.Node, at: FieldPath, lines: dict[FieldPath, int], path: Path) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # merge keys (<<) as PyYAML's safe loader does
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            name = key if isinstance(key, str) else str(key)
            where = at + (name,)
            if name in out:
                raise ScenarioFormatError(path, key_node.start_mark.line + 1, _field(where), f"duplicate key {name!r}.")
            lines[where] = key_node.start_mark.line + 1
            out[name] = _convert(loader, value_node, where, lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[at + (index,)] = item.start_mark.line + 1
            items.append(_convert(loader, item, at + (index,), lines, path))
        return items
    return loader.construct_object(node, deep=True)


def _field(at: FieldPath) -> str:
    text = ""
    for step in at:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _line(lines: dict[FieldPath, int], at: FieldPath) -> int | None:
    while at not in lines and at:
        at = at[:-1]
    return lines.get(at)


# -- validation ------------------------------------------------------------------------------


def _schema_error(data: Any, lines: dict[FieldPath, int], path: Path) -> ScenarioFormatError | None:
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(data))
    if not errors:
        return None
    # The first bad entry in the file, then the most telling error about it: best_match alone
    # prefers shallow errors, naming a later entry's stray key before an earlier entry's bad value.
    first = min(_position(e.absolute_path) for e in errors)
    error = jsonschema.exceptions.best_match(e for e in errors if _position(e.absolute_path)[:len(first)] == first)
    at: FieldPath = tuple(error.absolute_path)
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in known]
        if extras:
            at = at + (extras[0],)
            close = difflib.get_close_matches(extras[0], known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = f"unknown key {extras[0]!r}; {hint}allowed here: {', '.join(known)}."
    elif error.validator == "enum":
        close = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}{hint}"
    elif error.validator == "required":
        message = f"{message}."
    elif error.validator == "oneOf" and error.schema.get("description"):
        message = f"got {error.instance!r:.60}; expected {error.schema['description']}."
    elif error.validator == "pattern" and at and at[-1] == "agent":
        message = f"{error.instance!r} is not `module:attr` of a dict of flows nor an http(s) URL."
    return ScenarioFormatError(path, _line(lines, at), _field(at), message)


def _position(path: Any) -> tuple[int, ...]:
    """Where an error lies in document order: the list indexes along its path."""
    return tuple(p for p in path if isinstance(p, int))


def _turn(raw: dict[str, Any], index: int, at: FieldPath, lines: dict[FieldPath, int], path: Path) -> Turn:
    given = [k for k in ("user", "parts", "data") if k in raw]
    if len(given) != 1:
        problem = "has none of" if not given else f"has {' and '.join(given)}; give only one of"
        raise ScenarioFormatError(path, _line(lines, at), _field(at), f"the turn {problem} `user`, `parts`, `data`.")
    if "user" in raw:
        parts = [{"kind": "text", "text": raw["user"]}]
    elif "parts" in raw:
        parts = [dict(p) for p in raw["parts"]]
    else:
        parts = [{"kind": "data", "data": raw["data"]}]
    expect = dict(raw.get("expect") or {})
    for name, matcher in _matchers(expect):
        if isinstance(matcher, dict) and "regex" in matcher:
            try:
                re.compile(matcher["regex"])
            except re.error as error:
                where = at + ("expect",) + name + ("regex",)
                raise ScenarioFormatError(path, _line(lines, where), _field(where), f"bad regular expression: {error}.") from None
    if "chunks" in expect and not raw.get("stream"):
        where = at + ("expect", "chunks")
        raise ScenarioFormatError(path, _line(lines, where), _field(where), "`chunks` needs `stream: true` on the turn.")
    field_lines = {k: _line(lines, at + ("expect", k)) or 0 for k in expect}
    return Turn(index, parts, expect, raw.get("llm"), bool(raw.get("stream")), raw.get("message_id"),
                _line(lines, at) or 0, field_lines)


def _matchers(expect: dict[str, Any]) -> list[tuple[FieldPath, Any]]:
    found: list[tuple[FieldPath, Any]] = [((k,), expect[k]) for k in ("text", "artifact_text", "error") if k in expect]
    for i, artifact in enumerate(expect.get("artifacts") or []):
        if "text" in artifact:
            found.append((("artifacts", i, "text"), artifact["text"]))
    return found


def load_scenarios(path: Path) -> list[Scenario]:
    """Every scenario in the file at ``path``; any problem raises :class:`ScenarioFormatError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioFormatError(path, None, "", f"cannot read the file: {error}.") from None
    data, lines = _load_yaml(text, path)
    problem = _schema_error(data, lines, path)
    if problem is not None:
        raise problem
    if "simulations" in data and "turns" not in data and "scenarios" not in data:
        return []  # a file of simulations only (see simulation_file)
    if ("turns" in data) == ("scenarios" in data):
        raise ScenarioFormatError(
            path, 1, "", "a file needs `turns` (one scenario) or `scenarios` (a list of them), not "
            + ("both." if "turns" in data else "neither.")
        )
    if "turns" in data:
        entries: list[tuple[FieldPath, dict[str, Any]]] = [((), {"name": data.get("name") or path.stem, **data})]
    else:
        if "name" in data:
            raise ScenarioFormatError(path, _line(lines, ("name",)), "name", "top-level `name` is for a single-scenario file; name each entry of `scenarios`.")
        entries = [(("scenarios", i), s) for i, s in enumerate(data["scenarios"])]
    scenarios: list[Scenario] = []
    seen: dict[str, int] = {}
    for at, raw in entries:
        line = _line(lines, at) or 1
        if raw["name"] in seen:
            raise ScenarioFormatError(path, _line(lines, at + ("name",)), _field(at + ("name",)),
                                      f"two scenarios are named {raw['name']!r} (the first on line {seen[raw['name']]}); names must be unique.")
        seen[raw["name"]] = line
        turns = [_turn(t, i, at + ("turns", i), lines, path) for i, t in enumerate(raw["turns"])]
        scenarios.append(Scenario(
            name=raw["name"], path=path, turns=turns,
            agent=raw.get("agent", data.get("agent")), skill=raw.get("skill", data.get("skill")),
            cassette=raw.get("cassette", data.get("cassette")), skip=raw.get("skip", data.get("skip") if at else None),
            description=raw.get("description", ""), line=line,
            agent_line=_line(lines, at + ("agent",)) if "agent" in raw and at else _line(lines, ("agent",)) if "agent" in data else None,
        ))
    return scenarios
