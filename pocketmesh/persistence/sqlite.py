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
from typing import Any, Callable, Sequence, TypeVar

from ..errors import PersistenceError
from ..log import logger
from ..types import Params
from .base import TRACE_ROWS_KEY, TraceRow, has_trace_rows, prefix_end
from .sqlite_sql import APPEND_TRACE, SCHEMA, TRACE_TIMINGS, UPSERT_RUN, UPSERT_STEP

T = TypeVar("T")

DEFAULT_PATH = "pocketmesh.sqlite"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

Statement = tuple[str, Sequence[Any]]
Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def default_path() -> Path:
    """``POCKETMESH_DB_PATH`` if set, else ``./pocketmesh.sqlite``."""
    return Path(os.environ.get("POCKETMESH_DB_PATH") or DEFAULT_PATH)


class SQLitePersistence:
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
        await self._call(self._write, [(UPSERT_RUN, (run_id, state_json, params_json))])

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
    ) -> None:
        """Save a step, the new trace entries and the state they led to in one transaction.

        ``state_json`` is a run record without its trace; ``load_run`` puts the trace back.
        """
        statements: list[Statement] = []
        if step is not None:
            statements.append((UPSERT_STEP, (run_id, *step)))
        for row in trace_rows:
            statements.append((APPEND_TRACE, (run_id, *row)))
        statements.append((UPSERT_RUN, (run_id, state_json, params_json)))
        await self._call(self._write, statements)

    async def load_checkpoint(self, run_id: str) -> tuple[Any, int] | None:
        """The run's state (trace included) and how many trace entries are stored as rows."""
        return await self._call(self._load, run_id)  # type: ignore[no-any-return]

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

    # -- worker-thread side -----------------------------------------------------------------
    #
    # One thread owns the connection. Jobs go in through a queue and results come back with
    # call_soon_threadsafe: cheaper than run_in_executor's two chained futures per call, and
    # each future carries its own loop, so the store serves several event loops in turn.

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await self._submit(fn, *args)
        except sqlite3.Error as exc:
            raise PersistenceError(
                f"SQLite error on {self.path}: {exc}. Check that the file is writable and not "
                f"damaged, or point POCKETMESH_DB_PATH at another file."
            ) from exc

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._serve, args=(self._jobs,), name="pocketmesh-sqlite", daemon=True
                    )
                    thread.start()
                    self._thread = thread
        self._jobs.put((fn, args, loop, future))
        return future

    def _serve(self, jobs: queue.SimpleQueue[Job | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            if job[0] != self._write:
                self._run_one(job)
                continue
            # Writes queued behind this one (other runs' checkpoints) share its commit.
            group = [job]
            while True:
                try:
                    nxt = jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None or nxt[0] != self._write:
                    self._commit_group(group)
                    group = []
                    if nxt is None:
                        return
                    self._run_one(nxt)
                    break
                group.append(nxt)
            if group:
                self._commit_group(group)

    @staticmethod
    def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _reply(self, job: Job, result: Any, error: BaseException | None) -> None:
        try:
            job[2].call_soon_threadsafe(self._settle, job[3], result, error)
        except RuntimeError:
            pass  # the caller's loop is closed: nobody is waiting any more

    def _run_one(self, job: Job) -> None:
        fn, args = job[0], job[1]
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            self._reply(job, None, exc)
        else:
            self._reply(job, result, None)

    def _commit_group(self, group: list[Job]) -> None:
        if len(group) == 1:
            self._run_one(group[0])
            return
        # Each job in its own savepoint: one job's failure fails only its caller. Callers hear
        # back only after COMMIT, so a step is never reported saved before it is on disk.
        errors: list[BaseException | None] = []
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for job in group:
                    conn.execute("SAVEPOINT job")
                    try:
                        for sql, args in job[1][0]:
                            conn.execute(sql, args)
                    except sqlite3.Error as exc:
                        conn.execute("ROLLBACK TO job")
                        errors.append(exc)
                    else:
                        errors.append(None)
                    conn.execute("RELEASE job")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException as exc:  # noqa: BLE001 - the whole group failed to commit
            for job in group:
                self._reply(job, None, exc)
            return
        for job, error in zip(group, errors):
            self._reply(job, None, error)

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

    def _load(self, run_id: str) -> tuple[Any, int] | None:
        conn = self._connection()
        row = conn.execute("SELECT state FROM pocketmesh_runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        state = json.loads(row[0])
        if not has_trace_rows(state):
            return state, 0
        count = state.pop(TRACE_ROWS_KEY)
        rows = conn.execute(
            "SELECT step, node, action, started_at, duration_ms FROM pocketmesh_trace "
            "WHERE run_id = ? AND seq < ? ORDER BY seq",
            (run_id, count),
        ).fetchall()
        state["trace"] = [list(r) for r in rows]
        return state, count

    def _fetchone(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self._connection().execute(sql, args).fetchone()

    def _fetchall(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._connection().execute(sql, args).fetchall()

    def _close_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()
