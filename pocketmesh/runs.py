"""Run records: how a run's position, trace and state are kept in a persistence backend.

A backend stores, per run id, one JSON object (the *record*) through ``save_run``; this module
owns its shape so that a backend implementing only the five-method protocol is enough.

Built-in backends also offer a fast path (``save_checkpoint`` / ``load_checkpoint``): the
record arrives already JSON-encoded and without its trace, whose new entries come as rows to
append, nor its shared state, which is kept in per-key rows: a checkpoint writes only the keys
the run changed (:mod:`pocketmesh.state`), and a list the runtime appends to grows by its new
items. So a checkpoint costs the same at step 10 and step 10,000, and with 1 KB of state or
1 MB. ``load_run`` on those backends still returns the full record, trace and state included,
so what a reader sees does not depend on the path.

Each fast-path save stamps the record with a new revision (``rev``); a reader holding a record
of that revision can ask the backend for it only if it changed since.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import PersistenceError, StateNotSerializableError
from .persistence.base import RECORD_MARKER, SHARED_ROWS_KEY, TRACE_ROWS_KEY, UNCHANGED, Persistence
from .results import TraceStep
from .state import Pending, StateImage, TrackedState
from .types import Action, Params, SharedState

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
    updated_at: float | None = None
    """When the record was last saved (seconds since the epoch; ``None`` on older records)."""
    saved_trace: int = field(default=0, repr=False, compare=False)
    """How many trace entries the backend already holds as rows (fast-path backends only)."""
    rev: str | None = field(default=None, repr=False, compare=False)
    """The revision of the last save (fast-path backends only)."""
    image: StateImage = field(default_factory=StateImage, repr=False, compare=False)
    """What the backend holds of :attr:`shared`, key by key (fast-path backends only)."""
    given_shared: SharedState | None = field(default=None, repr=False, compare=False)
    """The caller's own dict, while a tracked copy of it runs (it gets the final state back)."""
    _params_json: tuple[Params, str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """True once the run completed, failed or was canceled."""
        return self.status in FINISHED

    def to_state(self, *, with_trace: bool = True) -> dict[str, Any]:
        """The JSON object handed to ``Persistence.save_run`` (the trace and shared state left
        out for the fast path, which stores them as rows); stamps :attr:`updated_at`."""
        self.updated_at = time.time()
        state = {
            RECORD_MARKER: RECORD_VERSION,
            "status": self.status,
            "flow": self.flow,
            "params": self.params,
            "position": self.position,
            "steps": self.steps,
            "since_input": self.since_input,
            "action": self.action,
            "error": self.error,
            "updated_at": self.updated_at,
        }
        if with_trace:
            state["shared"] = self.shared
            state["trace"] = [t.to_row() for t in self.trace]
        else:
            self.rev = state["rev"] = new_revision()
            state[TRACE_ROWS_KEY] = len(self.trace)
            state[SHARED_ROWS_KEY] = True
        return state

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
                updated_at=state.get("updated_at"),
            )
        except (KeyError, TypeError) as exc:
            raise PersistenceError(
                f"run record {run_id!r} is damaged ({exc!r}); delete it with "
                f"persistence.delete_run({run_id!r}) and start the run again."
            ) from exc


_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
"""One encoder for every checkpoint: ``json.dumps`` with options builds a new one per call."""

try:
    from json.encoder import c_make_encoder as _make_encoder
except ImportError:  # pragma: no cover - CPython always has the C encoder
    _make_encoder = None
_one_value = (
    _make_encoder(None, None, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)
    if _make_encoder is not None else None
)
"""The C encoder built once: ``JSONEncoder.encode`` builds it anew on every call, which costs
more than encoding one small value (a checkpoint encodes each changed key on its own)."""


def _encode_value(value: Any) -> str:
    if _one_value is None:
        return _encode(value)
    return "".join(_one_value(value, 0))


_PROCESS = secrets.token_hex(4) + "-"
_REVISIONS = itertools.count(1)


def new_revision() -> str:
    """A record revision: unique across processes (a random prefix) and saves (a counter)."""
    return f"{_PROCESS}{next(_REVISIONS)}"


def dumps_checked(value: Any, root: str = "shared") -> str:
    """JSON-encode ``value``; a non-JSON value raises an error naming its key path."""
    problem = find_unserializable(value, root)
    if problem is not None:
        raise problem
    try:
        return _encode(value)
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
    # Iterative, and scalars (the common case) cost one set lookup each and are never pushed.
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        cls = current.__class__
        if cls is dict or (cls not in _SCALARS and isinstance(current, dict)):
            for key, item in current.items():
                if key.__class__ is not str and not isinstance(key, str):
                    return False
                if item.__class__ not in _SCALARS:
                    push(item)
        elif cls is list or cls is tuple or (cls not in _SCALARS and isinstance(current, (list, tuple))):
            for item in current:
                if item.__class__ not in _SCALARS:
                    push(item)
    return True


_SCALARS = frozenset({str, int, float, bool, type(None)})



def encode_value(value: Any, key: Any) -> str:
    """``shared[key]``'s value as JSON text, or an error naming the path of what JSON cannot hold."""
    try:
        text = _encode_value(value)
        if value.__class__ not in _SCALARS and not _keys_are_str(value):
            raise TypeError("non-str key")
    except (TypeError, ValueError):
        dumps_checked(value, f"shared[{key!r}]")
        raise
    except RecursionError as exc:
        raise StateNotSerializableError(f"shared[{key!r}]", value, "it contains itself (a circular reference)") from exc
    return text


def encode_record(record: RunRecord, *, with_trace: bool = True) -> tuple[str, str]:
    """The record and its params as JSON text, or an error naming what cannot be saved
    (``with_trace=False``: the fast path's record, without its trace and shared state)."""
    state = record.to_state(with_trace=with_trace)
    try:
        state_text = _encode(state)
        if not ((not with_trace or _keys_are_str(record.shared)) and _keys_are_str(record.position)):
            raise TypeError("non-str key")
    except (TypeError, ValueError):
        if with_trace:
            dumps_checked(record.shared, "shared")
        dumps_checked(record.position, "the sub-flow prepare() result in the position")
        raise
    # Run params rarely change during a run: encode them again only when replaced.
    cached = record._params_json
    if cached is None or cached[0] is not record.params:
        cached = record._params_json = (record.params, dumps_checked(record.params, "params"))
    return state_text, cached[1]


TraceRow = tuple[int, int, str, "Action | None", "float | None", "float | None"]
"""One trace entry as the fast path stores it: (position in the trace, step, node id, action,
started_at, duration_ms)."""


class CheckpointStore(Protocol):
    """The optional fast path of the built-in backends (see the module docstring).

    ``save_checkpoint`` writes, in one transaction, the step, the new trace rows, the record
    (``state_json``: without trace, and without shared state when ``shared`` is given; ``rev``:
    the revision it carries) and the shared state's changed keys (:class:`pocketmesh.state.Pending`). ``load_checkpoint``
    returns ``(state, trace rows, keys)``: the whole record, trace and state put back, with
    each per-key row's ``(key, position, parts)`` (``None`` for a record saved whole), or
    :data:`~pocketmesh.persistence.base.UNCHANGED` when the record's revision is still
    ``unless_rev``.
    """

    async def save_checkpoint(
        self,
        run_id: str,
        state_json: str,
        params_json: str,
        step: tuple[str, str, str] | None,
        trace_rows: list[TraceRow],
        shared: Pending | None = None,
        *,
        rev: str | None = None,
    ) -> None: ...

    async def load_checkpoint(
        self, run_id: str, *, unless_rev: str | None = None
    ) -> tuple[Any, int, list[tuple[str, int, int]] | None] | str | None: ...


def track(record: RunRecord) -> None:
    """Make ``record.shared`` a :class:`TrackedState` for a run starting on a fast-path backend
    (a caller's own dict is copied, and gets the final state back at the end)."""
    if record.shared.__class__ is not TrackedState:
        record.given_shared = record.shared
        record.shared = TrackedState(record.shared)
    else:
        record.shared.before = set()  # type: ignore[attr-defined]


def untrack(record: RunRecord) -> SharedState:
    """The state to hand back when a run ends: the caller's own dict, updated, if there was one."""
    shared = record.shared
    if shared.__class__ is TrackedState and record.image.owner is shared and record.image.synced:
        shared.settle()  # all saved: the next run starts clean
    given = record.given_shared
    if given is None:
        return shared
    record.given_shared = None
    if given is not shared:
        given.clear()
        given.update(dict.items(shared))
    return given


async def load_run_record(
    persistence: Persistence, run_id: str, *, known: RunRecord | None = None
) -> RunRecord | None:
    """The persisted record of ``run_id``, or ``None`` when the backend has none.

    ``known``: a record this process saved last; it is returned as it is when the backend
    still holds that revision (fast-path backends), and read afresh otherwise.
    """
    saved_trace, keys = 0, None
    try:
        fast = getattr(persistence, "load_checkpoint", None)
        if fast is not None:
            if known is not None and known.rev is not None:
                loaded = await fast(run_id, unless_rev=known.rev)
                if loaded == UNCHANGED:
                    return known
            else:
                loaded = await fast(run_id)
            state, saved_trace, keys = (None, 0, None) if loaded is None else loaded
        else:
            state = await persistence.load_run(run_id)
    except PersistenceError:
        raise
    except Exception as exc:
        raise PersistenceError(f"loading run {run_id!r} failed: {exc!r}") from exc
    if state is None:
        return None
    record = RunRecord.from_state(run_id, state)
    record.saved_trace = saved_trace
    if keys is not None:
        record.shared = TrackedState(record.shared)
        record.image = StateImage.loaded(record.shared, keys)
        record.image.owner = record.shared
        record.image.synced = True
        record.rev = state.get("rev")
    return record


async def save_run_record(
    persistence: Persistence,
    record: RunRecord,
    step: tuple[str, str, Any] | None = None,
    *,
    between_steps: bool = False,
) -> None:
    """Persist ``record`` (and the step that led to it) as one checkpoint (``between_steps``:
    no node is running, so the keys the last step touched count as saved from here on)."""
    fast = getattr(persistence, "save_checkpoint", None)
    state_text, params_text = encode_record(record, with_trace=fast is None)
    try:
        if fast is not None:
            pending = record.image.changes(record.shared, encode_value)
            step_text = None if step is None else (step[0], step[1], _encode(step[2]))
            trace, start = record.trace, record.saved_trace
            rows = [(start + i, *entry.to_row()) for i, entry in enumerate(trace[start:])]
            await fast(record.run_id, state_text, params_text, step_text, rows, pending, rev=record.rev)
            record.saved_trace = len(trace)
            record.image.commit(pending, record.shared, settle=between_steps)
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
