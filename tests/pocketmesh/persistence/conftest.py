"""Every durable-run test runs against both built-in backends and a user-written one.

PostgreSQL and Redis join in when ``POCKETMESH_POSTGRES_DSN`` / ``POCKETMESH_REDIS_URL`` are
set (``eval "$(.ci/services.sh)"`` starts both on loopback); each test gets its own tables / keys.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
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


SERVER_ENV = {"postgres": "POCKETMESH_POSTGRES_DSN", "redis": "POCKETMESH_REDIS_URL"}
BACKENDS = ["memory", "sqlite", "user", *(k for k, env in SERVER_ENV.items() if os.environ.get(env))]


def make_backend(kind: str, tmp_path: Path) -> Persistence:
    if kind == "memory":
        return InMemoryPersistence()
    if kind == "sqlite":
        return SQLitePersistence(tmp_path / "runs.sqlite")
    if kind == "postgres":
        from pocketmesh.persistence.postgres import PostgresPersistence

        return PostgresPersistence(table_prefix=f"pmtest_{uuid.uuid4().hex[:12]}")
    if kind == "redis":
        from pocketmesh.persistence.redis import RedisPersistence

        return RedisPersistence(prefix=f"pmtest:{uuid.uuid4().hex[:12]}:")
    return SeedInMemoryPersistence()


def drop_backend(store: Any) -> None:
    """Remove what a server backend wrote (its tables or keys); others need nothing."""
    if hasattr(store, "table_prefix"):
        import psycopg

        with psycopg.connect(store.dsn, autocommit=True) as conn:
            tables = ", ".join(f"{store.table_prefix}_{name}" for name in ("runs", "steps", "trace", "state"))
            conn.execute(f"DROP TABLE IF EXISTS {tables}")
    elif hasattr(store, "index_key"):
        import redis

        with redis.Redis.from_url(store.url) as client:
            keys = list(client.scan_iter(match=f"{store.prefix}*", count=1000))
            if keys:
                client.delete(*keys)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Persistence]:
    """A fresh backend of each kind."""
    store = make_backend(request.param, tmp_path)
    yield store
    drop_backend(store)
