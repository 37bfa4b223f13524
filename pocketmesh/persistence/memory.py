"""An in-memory backend for tests and single-process use."""

from __future__ import annotations

import json
from array import array
from typing import TYPE_CHECKING, Any, Sequence

from ..types import Params
from .base import SHARED_ROWS_KEY, TRACE_ROWS_KEY, UNCHANGED, TraceRow, assemble_shared, has_trace_rows

if TYPE_CHECKING:
    from ..state import Pending

_NAN = float("nan")


class InMemoryPersistence:
    """Keeps runs in dicts, as JSON text, so saved states never alias live objects.

    A run's shared state is kept key by key (a checkpoint replaces only the keys that
    changed), and its steps and trace in packed arrays: a step costs a few dozen bytes, no more
    than a SQLite file grows by. What a run leaves behind is mostly strings, tuples and a few
    arrays, so a store holding many runs adds little for the garbage collector to walk.
    """

    def __init__(self) -> None:
        self._runs: dict[str, str] = {}
        self._params: dict[str, str] = {}
        self._shared: dict[str, dict[str, tuple[Any, ...] | list[Any]]] = {}
        """run id -> key -> (position, JSON text, appended JSON arrays...): a tuple (which the
        garbage collector stops tracking) until the key is first appended to, then a list."""
        self._journals: dict[str, _Journal] = {}
        self._revs: dict[str, str] = {}

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        self._runs[run_id] = json.dumps(state)
        self._params[run_id] = json.dumps(params)
        self._shared.pop(run_id, None)
        self._revs.pop(run_id, None)

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state, or ``None``."""
        loaded = await self.load_checkpoint(run_id)
        return None if loaded is None else loaded[0]  # type: ignore[index]

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        self._journal(run_id).add_step(str(step_id), node_name, json.dumps(result))

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first."""
        return list(self._runs)

    async def list_runs_with_prefix(self, prefix: str) -> list[str]:
        """The ids of the runs whose id starts with ``prefix``, oldest first."""
        return [run_id for run_id in self._runs if run_id.startswith(prefix)]

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps."""
        self._runs.pop(run_id, None)
        self._params.pop(run_id, None)
        self._shared.pop(run_id, None)
        self._journals.pop(run_id, None)
        self._revs.pop(run_id, None)

    async def load_steps(self, run_id: str) -> dict[str, Any]:
        """The recorded steps of a run, keyed ``<node>-<step>``."""
        journal = self._journals.get(run_id)
        return {} if journal is None else journal.steps()

    async def load_checkpoint(
        self, run_id: str, *, unless_rev: str | None = None
    ) -> tuple[Any, int, list[tuple[str, int, int]] | None] | str | None:
        """The run's state (trace and shared state included), how many trace entries are kept
        as rows, and its per-key rows; :data:`UNCHANGED` if its revision is ``unless_rev``."""
        text = self._runs.get(run_id)
        if text is None:
            return None
        if unless_rev is not None and self._revs.get(run_id) == unless_rev:
            return UNCHANGED
        state = json.loads(text)
        keys = None
        if isinstance(state, dict) and state.pop(SHARED_ROWS_KEY, None):
            stored = self._shared.get(run_id, {})
            rows = ((key, part, entry[0], t) for key, entry in stored.items() for part, t in enumerate(entry[1:]))
            state["shared"], keys = assemble_shared(rows)
        if not has_trace_rows(state):
            return state, 0, keys
        count = state.pop(TRACE_ROWS_KEY)
        state["trace"] = self._journal(run_id).trace(count)
        return state, count, keys

    async def save_checkpoint(
        self,
        run_id: str,
        state_json: str,
        params_json: str,
        step: tuple[str, str, str] | None,
        trace_rows: Sequence[TraceRow] = (),
        shared: Pending | None = None,
        *,
        rev: str | None = None,
    ) -> None:
        """Save a step, the new trace entries, the changed keys of the shared state and the
        record they led to at once (already JSON-encoded; ``rev``: the record's revision)."""
        if step is not None or trace_rows:
            journal = self._journal(run_id)
            if step is not None:
                journal.add_step(*step)
            for row in trace_rows:
                journal.set_trace(*row)
        if shared is None:
            self._shared.pop(run_id, None)
        else:
            stored = self._shared.get(run_id)
            if stored is None or shared.replace:
                stored = self._shared[run_id] = {}
            for key, _parts in shared.drops:
                stored.pop(key, None)
            for key, pos, text in shared.puts:
                stored[key] = (pos, text)
            for key, _pos, _part, text in shared.appends:
                entry = stored[key]
                if entry.__class__ is tuple:
                    entry = stored[key] = list(entry)
                entry.append(text)  # type: ignore[union-attr]
        self._runs[run_id] = state_json
        self._params[run_id] = params_json
        if rev is None:
            self._revs.pop(run_id, None)
        else:
            self._revs[run_id] = rev

    def _journal(self, run_id: str) -> _Journal:
        journal = self._journals.get(run_id)
        if journal is None:
            journal = self._journals[run_id] = _Journal()
        return journal


class _Journal:
    """A run's steps and trace, packed: numbers in three arrays (a row of each per entry),
    repeated strings (node ids, actions, step results) once each in a table."""

    __slots__ = ("words", "index", "trace_ints", "trace_times", "step_ints", "odd_ids")

    def __init__(self) -> None:
        self.words: list[Any] = [None]
        self.index: dict[Any, int] = {None: 0}
        self.trace_ints = array("q")
        """Per trace entry: step, node word, action word."""
        self.trace_times = array("d")
        """Per trace entry: started at, duration (NaN for none)."""
        self.step_ints = array("q")
        """Per step: its id (-1: see ``odd_ids``), node word, result word."""
        self.odd_ids: dict[int, str] | None = None
        """Step ids that are not plain decimal numbers, by step position."""

    def word(self, value: Any) -> int:
        number = self.index.get(value)
        if number is None:
            number = self.index[value] = len(self.words)
            self.words.append(value)
        return number

    def add_step(self, step_id: str, node: str, result_json: str) -> None:
        if step_id.isascii() and step_id.isdigit() and str(int(step_id)) == step_id and len(step_id) < 18:
            number = int(step_id)
        else:
            if self.odd_ids is None:
                self.odd_ids = {}
            self.odd_ids[len(self.step_ints) // 3] = step_id
            number = -1
        self.step_ints.extend((number, self.word(node), self.word(result_json)))

    def steps(self) -> dict[str, Any]:
        words, odd, ints = self.words, self.odd_ids or {}, self.step_ints
        out: dict[str, Any] = {}
        for i in range(len(ints) // 3):
            step, node, result = ints[3 * i:3 * i + 3]
            out[f"{words[node]}-{odd.get(i, step)}"] = json.loads(words[result])
        return out

    def set_trace(self, seq: int, step: int, node: str, action: Any, started: Any = None, duration: Any = None) -> None:
        if 3 * seq < len(self.trace_ints):
            del self.trace_ints[3 * seq:]
            del self.trace_times[2 * seq:]
        self.trace_ints.extend((step, self.word(node), self.word(action)))
        self.trace_times.extend((_NAN if started is None else started, _NAN if duration is None else duration))

    def trace(self, count: int) -> list[list[Any]]:
        words, ints, times = self.words, self.trace_ints, self.trace_times
        rows = []
        for i in range(min(count, len(ints) // 3)):
            step, node, action = ints[3 * i:3 * i + 3]
            started, duration = times[2 * i], times[2 * i + 1]
            rows.append([step, words[node], words[action], None if started != started else started,
                         None if duration != duration else duration])
        return rows
