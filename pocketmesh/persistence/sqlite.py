"""SQLite, the default backend: one file, WAL, safe for several processes at once."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..errors import PersistenceError
from ..types import Params

T = TypeVar("T")

DEFAULT_PATH = "pocketmesh.sqlite"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pocketmesh_runs (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL DEFAULT (julianday('now')),
    updated_at REAL NOT NULL DEFAULT (julianday('now'))
);
CREATE TABLE IF NOT EXISTS pocketmesh_steps (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    node_name TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, node_name)
);
"""

_UPSERT_RUN = (
    "INSERT INTO pocketmesh_runs (run_id, state, params) VALUES (?, ?, ?) "
    "ON CONFLICT(run_id) DO UPDATE SET state = excluded.state, params = excluded.params, "
    "updated_at = julianday('now')"
)
_UPSERT_STEP = (
    "INSERT OR REPLACE INTO pocketmesh_steps (run_id, step_id, node_name, result) "
    "VALUES (?, ?, ?, ?)"
)


def default_path() -> Path:
    """``POCKETMESH_DB_PATH`` if set, else ``./pocketmesh.sqlite``."""
    return Path(os.environ.get("POCKETMESH_DB_PATH") or DEFAULT_PATH)


class SQLitePersistence:
    """Runs in a SQLite file, in WAL mode with a busy timeout.

    Every save is committed before it returns, so a killed process loses no completed step.
    ``synchronous="NORMAL"`` (the default) is safe against a killed process;
    ``synchronous="FULL"`` also against power loss, at several times the cost per commit.
    All SQLite calls run on one worker thread, so the event loop never blocks on disk.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous!r}."
            )
        self.path = Path(path) if path is not None else default_path()
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- the five methods -------------------------------------------------------------------

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        state_json, params_json = json.dumps(state), json.dumps(params)
        await self._call(self._write, [(_UPSERT_RUN, (run_id, state_json, params_json))])

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state, or ``None``."""
        row = await self._call(
            self._fetchone, "SELECT state FROM pocketmesh_runs WHERE run_id = ?", (run_id,)
        )
        return None if row is None else json.loads(row[0])

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        await self._call(
            self._write, [(_UPSERT_STEP, (run_id, str(step_id), node_name, json.dumps(result)))]
        )

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first."""
        rows = await self._call(
            self._fetchall, "SELECT run_id FROM pocketmesh_runs ORDER BY created_at, rowid", ()
        )
        return [row[0] for row in rows]

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps."""
        await self._call(
            self._write,
            [
                ("DELETE FROM pocketmesh_steps WHERE run_id = ?", (run_id,)),
                ("DELETE FROM pocketmesh_runs WHERE run_id = ?", (run_id,)),
            ],
        )

    # -- extras -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> dict[str, Any]:
        """The recorded steps of a run, keyed ``<node>-<step>``, in step order."""
        rows = await self._call(
            self._fetchall,
            "SELECT step_id, node_name, result FROM pocketmesh_steps WHERE run_id = ? "
            "ORDER BY CAST(step_id AS INTEGER), rowid",
            (run_id,),
        )
        return {f"{node}-{step}": json.loads(result) for step, node, result in rows}

    async def save_checkpoint(
        self, run_id: str, state_json: str, params_json: str, step: tuple[str, str, str] | None
    ) -> None:
        """Save a step and the state it led to in one transaction (already JSON-encoded)."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        if step is not None:
            statements.append((_UPSERT_STEP, (run_id, *step)))
        statements.append((_UPSERT_RUN, (run_id, state_json, params_json)))
        await self._call(self._write, statements)

    async def close(self) -> None:
        """Close the connection and its worker thread; the store reopens on next use."""
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        await asyncio.get_running_loop().run_in_executor(executor, self._close_conn)
        executor.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"SQLitePersistence({str(self.path)!r})"

    # -- worker-thread side -----------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="pocketmesh-sqlite")
            executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except sqlite3.Error as exc:
            raise PersistenceError(
                f"SQLite error on {self.path}: {exc}. Check that the file is writable and not "
                f"damaged, or point POCKETMESH_DB_PATH at another file."
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._conn = conn
        return self._conn

    def _write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                conn.execute(sql, args)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _fetchone(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self._connection().execute(sql, args).fetchone()

    def _fetchall(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._connection().execute(sql, args).fetchall()

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
