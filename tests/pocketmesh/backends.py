"""Five-method backends over another backend, for tests that watch or break its saves."""

from __future__ import annotations

from typing import Any

from pocketmesh import Persistence


class PassThrough:
    """A backend with only the five methods, each passing straight to ``inner``; a test
    subclass overrides the one it watches."""

    def __init__(self, inner: Persistence) -> None:
        self.inner = inner

    async def save_run(self, run_id: str, state: Any, params: Any) -> None:
        await self.inner.save_run(run_id, state, params)

    async def load_run(self, run_id: str) -> Any:
        return await self.inner.load_run(run_id)

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        await self.inner.save_step(run_id, step_id, node_name, result)

    async def list_runs(self) -> list[str]:
        return await self.inner.list_runs()

    async def delete_run(self, run_id: str) -> None:
        await self.inner.delete_run(run_id)


class DiesAfterSave(PassThrough):
    """Raises ``death`` (the process dying) right after the ``after``-th ``save_run`` is stored."""

    def __init__(self, inner: Persistence, after: int, death: type[Exception]) -> None:
        super().__init__(inner)
        self.after, self.death, self.saves = after, death, 0

    async def save_run(self, run_id: str, state: Any, params: Any) -> None:
        await self.inner.save_run(run_id, state, params)
        self.saves += 1
        if self.saves == self.after:
            raise self.death(f"killed after save {self.saves}")
