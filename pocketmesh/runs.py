"""Run records: how a run's position, trace and state are kept in a persistence backend.

A backend stores, per run id, one JSON object (the *record*) through ``save_run``; this module
owns its shape so that a backend implementing only the five-method protocol is enough.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import PersistenceError, StateNotSerializableError
from .persistence.base import Persistence
from .results import TraceStep
from .types import Action, Params, SharedState

RECORD_MARKER = "pocketmesh_run"
RECORD_VERSION = 1
FINISHED = frozenset({"completed", "failed", "canceled"})


@dataclass
class RunRecord:
    """A run as persisted: status, shared state, where to continue, and what happened so far."""

    run_id: str
    status: str = "running"
    shared: SharedState = field(default_factory=dict)
    params: Params = field(default_factory=dict)
    position: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    since_input: int = 0
    trace: list[TraceStep] = field(default_factory=list)
    action: Action | None = None
    error: dict[str, Any] | None = None
    flow: str | None = None

    @property
    def finished(self) -> bool:
        """True once the run completed, failed or was canceled."""
        return self.status in FINISHED

    def to_state(self) -> dict[str, Any]:
        """The JSON object handed to ``Persistence.save_run``."""
        return {
            RECORD_MARKER: RECORD_VERSION,
            "status": self.status,
            "flow": self.flow,
            "shared": self.shared,
            "params": self.params,
            "position": self.position,
            "steps": self.steps,
            "since_input": self.since_input,
            "trace": [list(t) for t in self.trace],
            "action": self.action,
            "error": self.error,
        }

    @classmethod
    def from_state(cls, run_id: str, state: Any) -> RunRecord:
        """Read a record back; a foreign or damaged object raises :class:`PersistenceError`."""
        if not isinstance(state, dict) or state.get(RECORD_MARKER) != RECORD_VERSION:
            raise PersistenceError(
                f"run {run_id!r} in this persistence is not a pocketmesh run record "
                f"(got {str(state)[:80]!r}); was it written by something else? Use another "
                f"run_id, or delete it with persistence.delete_run({run_id!r})."
            )
        try:
            return cls(
                run_id=run_id,
                status=state["status"],
                shared=state["shared"],
                params=state.get("params") or {},
                position=state["position"],
                steps=state["steps"],
                since_input=state.get("since_input", 0),
                trace=[TraceStep(*t) for t in state["trace"]],
                action=state.get("action"),
                error=state.get("error"),
                flow=state.get("flow"),
            )
        except (KeyError, TypeError) as exc:
            raise PersistenceError(
                f"run record {run_id!r} is damaged ({exc!r}); delete it with "
                f"persistence.delete_run({run_id!r}) and start the run again."
            ) from exc


def dumps_checked(value: Any, root: str = "shared") -> str:
    """JSON-encode ``value``; a non-JSON value raises an error naming its key path."""
    problem = find_unserializable(value, root)
    if problem is not None:
        raise problem
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StateNotSerializableError(root, value, str(exc)) from exc


def find_unserializable(value: Any, path: str) -> StateNotSerializableError | None:
    """The first value under ``value`` JSON cannot hold, as an error naming its path."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return StateNotSerializableError(path, value, "NaN and infinity are not valid JSON")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return StateNotSerializableError(
                    f"{path}[{key!r}]", item,
                    f"dict keys must be str, this one is a {type(key).__name__}",
                )
            found = find_unserializable(item, f"{path}[{key!r}]")
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_unserializable(item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return StateNotSerializableError(path, value)


def _keys_are_str(value: Any) -> bool:
    """False if any dict under ``value`` has a non-str key (``json`` would silently str() it)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.__class__ is not str or not _keys_are_str(item):
                return False
        return True
    if isinstance(value, (list, tuple)):
        for item in value:
            if (isinstance(item, (dict, list, tuple))) and not _keys_are_str(item):
                return False
    return True


def encode_record(record: RunRecord) -> tuple[str, str]:
    """The record and its params as JSON text, or an error naming what cannot be saved."""
    state = record.to_state()
    try:
        state_text = json.dumps(state, allow_nan=False, separators=(",", ":"))
        if not (_keys_are_str(record.shared) and _keys_are_str(record.position)):
            raise TypeError("non-str key")
    except (TypeError, ValueError):
        dumps_checked(record.shared, "shared")
        dumps_checked(record.position, "the sub-flow prepare() result in the position")
        raise
    return state_text, dumps_checked(record.params, "params")


async def load_run_record(persistence: Persistence, run_id: str) -> RunRecord | None:
    """The persisted record of ``run_id``, or ``None`` when the backend has none."""
    try:
        state = await persistence.load_run(run_id)
    except PersistenceError:
        raise
    except Exception as exc:
        raise PersistenceError(f"loading run {run_id!r} failed: {exc!r}") from exc
    if state is None:
        return None
    return RunRecord.from_state(run_id, state)


async def save_run_record(
    persistence: Persistence,
    record: RunRecord,
    step: tuple[str, str, Any] | None = None,
) -> None:
    """Persist ``record`` (and the step that led to it) as one checkpoint."""
    state_text, params_text = encode_record(record)
    try:
        fast = getattr(persistence, "save_checkpoint", None)
        if fast is not None:
            step_text = None if step is None else (step[0], step[1], json.dumps(step[2]))
            await fast(record.run_id, state_text, params_text, step_text)
            return
        if step is not None:
            await persistence.save_step(record.run_id, step[0], step[1], step[2])
        await persistence.save_run(record.run_id, json.loads(state_text), json.loads(params_text))
    except PersistenceError:
        raise
    except Exception as exc:
        raise PersistenceError(f"saving run {record.run_id!r} failed: {exc!r}") from exc


async def cancel_run(persistence: Persistence, run_id: str) -> RunRecord:
    """Mark ``run_id`` canceled; it will refuse to run again. Finished runs keep their status."""
    from .errors import RunNotFoundError

    record = await load_run_record(persistence, run_id)
    if record is None:
        raise RunNotFoundError(run_id)
    if not record.finished:
        record.status = "canceled"
        await save_run_record(persistence, record)
    return record
