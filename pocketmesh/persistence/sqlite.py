"""SQLite, the default backend: one file, WAL, safe for several processes at once."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from ..errors import PersistenceError
from ..log import logger
from ..types import Params
from .worker import ConnectionWorker, Job, Statement
from .sqlite_sql import APPEND_TRACE, DROP_KEY, DROP_STATE, PUT_KEY, RESET_KEY, SCHEMA, TRACE_TIMINGS, UPSERT_RUN, UPSERT_STEP
from .base import SHARED_ROWS_KEY, TRACE_ROWS_KEY, UNCHANGED, TraceRow, assemble_shared, has_trace_rows, prefix_end

if TYPE_CHECKING:
    from ..state import Pending

T = TypeVar("T")

DEFAULT_PATH = "pocketmesh.sqlite"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

def default_path() -> Path:
    """``POCKETMESH_DB_PATH`` if set, else ``./pocketmesh.sqlite``."""
    return Path(os.environ.get("POCKETMESH_DB_PATH") or DEFAULT_PATH)


class SQLitePersistence(ConnectionWorker):
    """Runs in a SQLite file, in WAL mode with a busy timeout.

    Every save is committed before it returns, so a killed process loses no completed step.
    ``synchronous="NORMAL"`` (the default) is safe against a killed process;
    ``synchronous="FULL"`` also against power loss, at several times the cost per commit.
    All SQLite calls run on one worker thread, so the event loop never blocks on disk; writes
    that arrive while a commit is under way (concurrent runs) are committed together.
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
        self._local = threading.local()  # each worker thread opens its own connection
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the five methods -------------------------------------------------------------------

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        state_json, params_json = json.dumps(state), json.dumps(params)
        await self._call(self._write, [(DROP_STATE, (run_id,)), (UPSERT_RUN, (run_id, state_json, params_json))])

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state, or ``None``."""
        loaded = await self._call(self._load, run_id)
        return None if loaded is None else loaded[0]

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        await self._call(
            self._write, [(UPSERT_STEP, (run_id, str(step_id), node_name, json.dumps(result)))]
        )

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first."""
        rows = await self._call(
            self._fetchall, "SELECT run_id FROM pocketmesh_runs ORDER BY created_at, rowid", ()
        )
        return [row[0] for row in rows]

    async def list_runs_with_prefix(self, prefix: str) -> list[str]:
        """The ids of the runs whose id starts with ``prefix``, oldest first (an index range)."""
        end = prefix_end(prefix)
        if end is None:
            return await self.list_runs()
        rows = await self._call(
            self._fetchall,
            "SELECT run_id FROM pocketmesh_runs WHERE run_id >= ? AND run_id < ? ORDER BY created_at, rowid",
            (prefix, end),
        )
        return [row[0] for row in rows]

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps."""
        await self._call(
            self._write,
            [
                ("DELETE FROM pocketmesh_steps WHERE run_id = ?", (run_id,)),
                ("DELETE FROM pocketmesh_trace WHERE run_id = ?", (run_id,)),
                (DROP_STATE, (run_id,)),
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
        record they led to in one transaction.

        ``state_json`` is a run record without its trace (and, with ``shared``, without its
        shared state); ``load_run`` puts them back.
        """
        statements: list[Statement] = []
        if step is not None:
            statements.append((UPSERT_STEP, (run_id, *step)))
        for row in trace_rows:
            statements.append((APPEND_TRACE, (run_id, *row)))
        if shared is None or shared.replace:
            statements.append((DROP_STATE, (run_id,)))
        if shared is not None:
            for key, _parts in shared.drops:
                statements.append((DROP_KEY, (run_id, key)))
            for key, _parts in shared.resets:
                statements.append((RESET_KEY, (run_id, key)))
            for key, pos, text in shared.puts:
                statements.append((PUT_KEY, (run_id, key, 0, pos, text)))
            for key, pos, part, text in shared.appends:
                statements.append((PUT_KEY, (run_id, key, part, pos, text)))
        statements.append((UPSERT_RUN, (run_id, state_json, params_json)))
        await self._call(self._write, statements)

    async def load_checkpoint(
        self, run_id: str, *, unless_rev: str | None = None
    ) -> tuple[Any, int, list[tuple[str, int, int]] | None] | str | None:
        """The run's state (trace and shared state included), how many trace entries are
        stored as rows, and its per-key rows; :data:`UNCHANGED` if its revision is ``unless_rev``."""
        return await self._call(self._load, run_id, unless_rev)  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Close the connection and stop its worker thread; the store reopens on next use."""
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()
        with self._lock:
            thread, jobs = self._thread, self._jobs
            if thread is None:
                return
            # The worker finishes what is queued, closes its connection and exits; calls made
            # from now on start a fresh worker on a fresh queue.
            jobs.put((self._close_conn, (), loop, closed))
            jobs.put(None)
            self._thread, self._jobs = None, queue.SimpleQueue()
        await closed
        await loop.run_in_executor(None, thread.join)

    def __repr__(self) -> str:
        return f"SQLitePersistence({str(self.path)!r})"

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await self._submit(fn, *args)
        except sqlite3.Error as exc:
            raise PersistenceError(
                f"SQLite error on {self.path}: {exc}. Check that the file is writable and not "
                f"damaged, or point POCKETMESH_DB_PATH at another file."
            ) from exc

    # -- worker-thread side (the queue and commits: ConnectionWorker) --------------------------

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._switch_to_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(pocketmesh_trace)")}
                for column in TRACE_TIMINGS:
                    if column not in columns:
                        conn.execute(f"ALTER TABLE pocketmesh_trace ADD COLUMN {column} REAL")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._local.conn = conn
        return conn

    def _switch_to_wal(self, conn: sqlite3.Connection) -> None:
        # While another process switches the same new file to WAL, SQLite answers "database is
        # locked" at once instead of calling the busy handler: wait for it here, as long as
        # the busy timeout allows.
        deadline, pause = time.monotonic() + self.busy_timeout, 0.001
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() >= deadline:
                    raise
                if pause == 0.001:
                    logger.debug("%s is being set up by another connection; waiting to switch it to WAL", self.path)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _write(self, statements: list[Statement]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                conn.execute(sql, args)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _load(self, run_id: str, unless_rev: str | None = None) -> Any:
        conn = self._connection()
        row = conn.execute("SELECT state FROM pocketmesh_runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        state = json.loads(row[0])
        if unless_rev is not None and isinstance(state, dict) and state.get("rev") == unless_rev:
            return UNCHANGED
        keys = None
        if isinstance(state, dict) and state.pop(SHARED_ROWS_KEY, None):
            rows = conn.execute(
                "SELECT key, part, pos, value FROM pocketmesh_state WHERE run_id = ? ORDER BY pos, part", (run_id,)
            )
            state["shared"], keys = assemble_shared(rows)
        if not has_trace_rows(state):
            return state, 0, keys
        count = state.pop(TRACE_ROWS_KEY)
        rows = conn.execute(
            "SELECT step, node, action, started_at, duration_ms FROM pocketmesh_trace "
            "WHERE run_id = ? AND seq < ? ORDER BY seq",
            (run_id, count),
        ).fetchall()
        state["trace"] = [list(r) for r in rows]
        return state, count, keys

    def _fetchone(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self._connection().execute(sql, args).fetchone()

    def _fetchall(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._connection().execute(sql, args).fetchall()

    def _close_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()
