"""Snapshots of shared state and traces that stay the same across runs, machines and hash seeds.

:func:`normalise` turns a value into plain, stable JSON data:

- keys starting with ``__a2a_`` are dropped: the A2A server fills them per request (incoming
  message, history, task / context ids, final response parts) and the reply is asserted
  through ``reply.text`` instead; pass ``keep_internal=True`` to keep them;
- ``__error`` keeps ``node``, ``type`` and ``message`` (volatile pieces of the message are
  replaced like any other string); any other key in it (tracebacks, timings) is dropped;
- values under id keys (``messageId``, ``taskId``, ``contextId``, ``artifactId``, ``runId``,
  and their snake_case forms) become ``<messageId:1>``, ``<taskId:1>``, ... (``<uuid:N>`` when
  the id is a UUID, so one id reads the same wherever it appears);
- UUIDs anywhere in strings (dashed or 32-hex) become ``<uuid:1>``; ISO 8601 date-times
  become ``<timestamp:1>``; so do numbers under time keys (``timestamp``, ``*_at``, ``*At``,
  ``time``, ``created``, ``updated``, ``expires``) and, under any key, floats that read as a
  Unix time in seconds or milliseconds between 2001 and 2100 (what ``time.time()`` returns);
  memory addresses (``0x7f...``) become ``<address>``;
- equal values get equal placeholders, numbered by first appearance in a walk over sorted
  keys, so the result never depends on dict order or ``PYTHONHASHSEED``; sets are sorted,
  tuples and trace steps become lists (a step's timings left out), dataclasses become dicts.

:class:`SharedStateSnapshotExtension` is the syrupy extension behind the ``shared_snapshot``
fixture: one pretty JSON file per assertion, under ``__snapshots__/<test module>/``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syrupy.extensions.json import JSONSnapshotExtension

from pocketmesh import TraceStep

__all__ = ["Normaliser", "SharedStateSnapshotExtension", "dumps", "normalise"]

_ID_KEYS = {
    "messageId": "messageId", "message_id": "messageId",
    "taskId": "taskId", "task_id": "taskId",
    "contextId": "contextId", "context_id": "contextId",
    "artifactId": "artifactId", "artifact_id": "artifactId",
    "runId": "runId", "run_id": "runId",
}
_TIME_KEY = re.compile(
    r"(^|_)([Tt]imestamp|[Tt]ime|at|AT|[Cc]reated|[Uu]pdated|[Mm]odified|[Ee]xpires)$"
    r"|[a-z](At|Time|Timestamp|Created|Updated|Modified|Expires)$|^(TIMESTAMP|TIME)$"
)
_EPOCH_SECONDS = (1e9, 4.1e9)
"""Unix times from 2001-09-09 to 2099-12-05: a float in this range (or 1000 times it) is a clock reading."""
_UUID = re.compile(
    r"(?<![0-9a-fA-F])([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})(?![0-9a-fA-F])"
)
_TIMESTAMP = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
)
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,16}\b")
_ERROR_KEYS = ("node", "type", "message")
INTERNAL_PREFIX = "__a2a_"


class Normaliser:
    """One normalisation pass: remembers which value got which placeholder."""

    def __init__(self, *, keep_internal: bool = False) -> None:
        self.keep_internal = keep_internal
        self._seen: dict[str, dict[str, str]] = {}

    def placeholder(self, kind: str, value: str) -> str:
        """``<kind:N>``: the same ``value`` always gets the same N within this pass."""
        known = self._seen.setdefault(kind, {})
        if value not in known:
            known[value] = f"<{kind}:{len(known) + 1}>"
        return known[value]

    def __call__(self, value: Any, key: str | None = None) -> Any:
        if key is not None and key in _ID_KEYS and isinstance(value, (str, int)) and value != "":
            if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
                return value
            if isinstance(value, str) and _UUID.fullmatch(value):
                return self.placeholder("uuid", _canonical_uuid(value))
            return self.placeholder(_ID_KEYS[key], str(value))
        if key is not None and _TIME_KEY.search(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return self.placeholder("timestamp", repr(value))
        if isinstance(value, float) and _is_epoch(value):
            return self.placeholder("timestamp", repr(value))
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return self.mapping(value)
        if isinstance(value, (set, frozenset)):
            items = [self(v) for v in value]
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        if isinstance(value, (list, tuple, TraceStep)):
            return [self(v) for v in value]
        if isinstance(value, uuid.UUID):
            return self.placeholder("uuid", str(value))
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        return self.text(repr(value))

    def mapping(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        """A dict with string keys, in sorted order, internal keys dropped."""
        out: dict[str, Any] = {}
        for key in sorted(value, key=str):
            name = str(key)
            if name.startswith(INTERNAL_PREFIX) and not self.keep_internal:
                continue
            item = value[key]
            if name == "__error" and isinstance(item, Mapping):
                item = {k: item[k] for k in _ERROR_KEYS if k in item}
            out[name] = self(item, name)
        return out

    def text(self, value: str) -> str:
        """Replace UUIDs, timestamps and memory addresses inside ``value``."""
        value = _UUID.sub(lambda m: self.placeholder("uuid", _canonical_uuid(m.group(1))), value)
        value = _TIMESTAMP.sub(lambda m: self.placeholder("timestamp", m.group(0)), value)
        return _ADDRESS.sub("<address>", value)


def _is_epoch(value: float) -> bool:
    low, high = _EPOCH_SECONDS
    return low <= value <= high or low * 1000 <= value <= high * 1000


def _canonical_uuid(text: str) -> str:
    # The dashed and the 32-hex spelling of one UUID (task id vs run id) are the same value.
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text.lower()


def normalise(value: Any, *, keep_internal: bool = False) -> Any:
    """``value`` as stable JSON data (see the module docstring for the rules)."""
    return Normaliser(keep_internal=keep_internal)(value)


def dumps(value: Any) -> str:
    """Normalised ``value`` as the pretty JSON text stored in snapshot files."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class SharedStateSnapshotExtension(JSONSnapshotExtension):
    """Syrupy JSON snapshots of normalised shared state (or traces, or any JSON-like value)."""

    keep_internal = False

    def serialize(self, data: Any, *, exclude: Any = None, include: Any = None, matcher: Any = None) -> str:
        normalised = normalise(data, keep_internal=self.keep_internal)
        if exclude is not None or include is not None or matcher is not None:
            # Syrupy's own filters work on the normalised data, as the user sees it in the file.
            return super().serialize(normalised, exclude=exclude, include=include, matcher=matcher)
        return dumps(normalised)


class InternalKeysSnapshotExtension(SharedStateSnapshotExtension):
    """Like :class:`SharedStateSnapshotExtension`, keeping the ``__a2a_*`` keys."""

    keep_internal = True


def scenario_snapshot_path(scenario_file: Path, scenario: str, turn: int) -> Path:
    """Where a scenario turn's shared-state snapshot lives, beside the scenario file."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", scenario).strip("-") or "scenario"
    return scenario_file.parent / "__scenario_snapshots__" / scenario_file.stem / f"{slug}.turn-{turn}.json"
