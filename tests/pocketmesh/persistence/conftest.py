"""Every durable-run test runs against both built-in backends and a user-written one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pocketmesh import InMemoryPersistence, Persistence, SQLitePersistence


class SeedInMemoryPersistence:
    """The seed document's in-memory example, ported line by line: only the five methods."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}

    async def save_run(self, run_id: str, state: Any, _params: Any) -> None:
        if run_id not in self.runs:
            self.runs[run_id] = {"state": state, "steps": {}}
        else:
            self.runs[run_id]["state"] = state

    async def load_run(self, run_id: str) -> Any:
        run = self.runs.get(run_id)
        return run["state"] if run else None

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        run = self.runs.get(run_id)
        if run:
            run["steps"][f"{node_name}-{step_id}"] = result

    async def list_runs(self) -> list[str]:
        return list(self.runs.keys())

    async def delete_run(self, run_id: str) -> None:
        self.runs.pop(run_id, None)


BACKENDS = ["memory", "sqlite", "user"]


def make_backend(kind: str, tmp_path: Path) -> Persistence:
    if kind == "memory":
        return InMemoryPersistence()
    if kind == "sqlite":
        return SQLitePersistence(tmp_path / "runs.sqlite")
    return SeedInMemoryPersistence()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Persistence:
    """A fresh backend of each kind."""
    return make_backend(request.param, tmp_path)
