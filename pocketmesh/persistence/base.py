"""The persistence protocol: five async methods, the seed's interface."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..types import Params

RECORD_MARKER = "pocketmesh_run"
"""The key that marks a saved object as a pocketmesh run record (its value: the format version)."""

TRACE_ROWS_KEY = "trace_rows"
"""In a record saved through a built-in backend's fast path (``save_checkpoint``): how many
trace entries the backend keeps as rows instead of inside the record."""


@runtime_checkable
class Persistence(Protocol):
    """Where runs live between steps, turns and processes.

    Implement these five methods and every durable feature works: pause / resume,
    :class:`~pocketmesh.FlowStepper`, crash recovery and the A2A server.
    """

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state, or ``None``."""

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first."""

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps (no error if it is unknown)."""
