"""An in-memory backend for tests and single-process use."""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..types import Params
from .base import TRACE_ROWS_KEY, TraceRow, has_trace_rows


class InMemoryPersistence:
    """Keeps runs in a dict, as JSON text, so saved states never alias live objects."""

    def __init__(self) -> None:
        self._runs: dict[str, str] = {}
        self._params: dict[str, str] = {}
        self._steps: dict[str, dict[str, Any]] = {}
        self._trace: dict[str, list[tuple[Any, ...]]] = {}

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        self._runs[run_id] = json.dumps(state)
        self._params[run_id] = json.dumps(params)
        self._steps.setdefault(run_id, {})

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state, or ``None``."""
        loaded = await self.load_checkpoint(run_id)
        return None if loaded is None else loaded[0]

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        self._steps.setdefault(run_id, {})[f"{node_name}-{step_id}"] = json.loads(json.dumps(result))

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
        self._steps.pop(run_id, None)
        self._trace.pop(run_id, None)

    async def load_steps(self, run_id: str) -> dict[str, Any]:
        """The recorded steps of a run, keyed ``<node>-<step>``."""
        return dict(self._steps.get(run_id, {}))

    async def load_checkpoint(self, run_id: str) -> tuple[Any, int] | None:
        """The run's state (trace included) and how many trace entries are kept as rows."""
        text = self._runs.get(run_id)
        if text is None:
            return None
        state = json.loads(text)
        if not has_trace_rows(state):
            return state, 0
        count = state.pop(TRACE_ROWS_KEY)
        state["trace"] = [list(row) for row in self._trace.get(run_id, [])[:count]]
        return state, count

    async def save_checkpoint(
        self,
        run_id: str,
        state_json: str,
        params_json: str,
        step: tuple[str, str, str] | None,
        trace_rows: Sequence[TraceRow] = (),
    ) -> None:
        """Save a step, the new trace entries and the state they led to at once (already
        JSON-encoded; the state without its trace, which ``load_run`` puts back)."""
        if step is not None:
            step_id, node_name, result_json = step
            self._steps.setdefault(run_id, {})[f"{node_name}-{step_id}"] = json.loads(result_json)
        if trace_rows:
            trace = self._trace.setdefault(run_id, [])
            for seq, *entry in trace_rows:
                del trace[seq:]
                trace.append(tuple(entry))
        self._runs[run_id] = state_json
        self._params[run_id] = params_json
        self._steps.setdefault(run_id, {})
