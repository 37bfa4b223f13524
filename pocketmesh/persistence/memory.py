"""An in-memory backend for tests and single-process use."""

from __future__ import annotations

import json
from typing import Any

from ..types import Params


class InMemoryPersistence:
    """Keeps runs in a dict, as JSON text, so saved states never alias live objects."""

    def __init__(self) -> None:
        self._runs: dict[str, str] = {}
        self._params: dict[str, str] = {}
        self._steps: dict[str, dict[str, Any]] = {}

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        self._runs[run_id] = json.dumps(state)
        self._params[run_id] = json.dumps(params)
        self._steps.setdefault(run_id, {})

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state, or ``None``."""
        text = self._runs.get(run_id)
        return None if text is None else json.loads(text)

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        self._steps.setdefault(run_id, {})[f"{node_name}-{step_id}"] = json.loads(json.dumps(result))

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first."""
        return list(self._runs)

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps."""
        self._runs.pop(run_id, None)
        self._params.pop(run_id, None)
        self._steps.pop(run_id, None)

    async def load_steps(self, run_id: str) -> dict[str, Any]:
        """The recorded steps of a run, keyed ``<node>-<step>``."""
        return dict(self._steps.get(run_id, {}))

    async def save_checkpoint(
        self, run_id: str, state_json: str, params_json: str, step: tuple[str, str, str] | None
    ) -> None:
        """Save a step and the state it led to at once (already JSON-encoded)."""
        if step is not None:
            step_id, node_name, result_json = step
            self._steps.setdefault(run_id, {})[f"{node_name}-{step_id}"] = json.loads(result_json)
        self._runs[run_id] = state_json
        self._params[run_id] = params_json
        self._steps.setdefault(run_id, {})
