"""PostgreSQL: runs shared by several processes or machines, with a per-run lock for replicas.

Needs the ``postgres`` extra (``pip install 'pocketmesh[postgres]'``, psycopg 3).
Three tables, ``<prefix>_runs``, ``<prefix>_steps`` and ``<prefix>_trace``, are created on
first use (and a trace table made before steps were timed gets its timing columns).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import PersistenceError, RunLockTimeoutError
from ..types import Params
from .base import SHARED_ROWS_KEY, UNCHANGED, TraceRow, assemble_shared, merge_trace, prefix_end
from .statements import Statements

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from ..state import Pending

DSN_ENV = "POCKETMESH_POSTGRES_DSN"
STORAGES = ("text", "jsonb")
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_INSTALL = "pip install 'pocketmesh[postgres]'"


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ImportError(
            f"PostgresPersistence needs psycopg 3, which is not installed ({exc}). "
            f"Install the extra: {_INSTALL}"
        ) from exc
    return psycopg


def redact(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***``, for messages and reprs."""
    dsn = re.sub(r"(://[^:/@]*:)[^/]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn, flags=re.I)


def advisory_key(namespace: str, run_id: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock``, stable across processes and machines."""
    digest = hashlib.blake2b(f"{namespace}\0{run_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresPersistence:
    """Runs in PostgreSQL, for several ``pocketmesh serve`` replicas sharing one database.

    Every save commits before it returns; a step and the state it led to are committed in one
    transaction. ``storage="text"`` (the default) keeps the JSON exactly as written, key order
    included; ``storage="jsonb"`` makes states queryable in SQL but reorders object keys and
    refuses ``"\\u0000"`` in strings. Up to ``pool_size`` idle connections are kept per event
    loop (``0``: one connection per call) and closed when that loop ends, so the store is not
    bound to the loop that first used it. :meth:`run_lock` serializes turns of one run across
    processes.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        table_prefix: str = "pocketmesh",
        storage: str = "text",
        pool_size: int = 4,
        connect_timeout: float = 10.0,
    ) -> None:
        dsn = dsn if dsn is not None else os.environ.get(DSN_ENV)
        if not dsn:
            raise ValueError(
                f"PostgresPersistence has no database to connect to: pass "
                f"PostgresPersistence(dsn='postgresql://user:password@host/db') or set {DSN_ENV}."
            )
        if not _PREFIX.match(table_prefix):
            raise ValueError(
                f"table_prefix must be a plain SQL identifier (letters, digits, underscores, "
                f"at most 41 characters, not starting with a digit), got {table_prefix!r}."
            )
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}.")
        if pool_size < 0:
            raise ValueError(f"pool_size must be 0 (no pool) or more, got {pool_size!r}.")
        self._psycopg = _import_psycopg()
        self.dsn = dsn
        self.table_prefix = table_prefix
        self.storage = storage
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._schema_ready = False
        self._idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[AsyncConnection[Any]]
        ] = weakref.WeakKeyDictionary()
        self._lifetimes: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()
        self._sql = Statements(self._psycopg, table_prefix, storage)

    # -- the five methods -------------------------------------------------------------------

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        await self.save_checkpoint(run_id, json.dumps(state), json.dumps(params), None)

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state (its trace put back), or ``None``."""
        loaded = await self.load_checkpoint(run_id)
        return None if loaded is None else loaded[0]

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        args = (run_id, str(step_id), node_name, json.dumps(result))
        await self._execute(self._sql.upsert_step, args)

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first."""
        return [row[0] for row in await self._execute(self._sql.list_runs, (), fetch=True)]

    async def list_runs_with_prefix(self, prefix: str) -> list[str]:
        """The ids of the runs whose id starts with ``prefix``, oldest first (an index range)."""
        end = prefix_end(prefix)
        if end is None:
            return await self.list_runs()
        rows = await self._execute(self._sql.list_runs_between, (prefix, end), fetch=True)
        return [row[0] for row in rows]

    async def delete_run(self, run_id: str) -> None:
        """Forget the run, its steps and its trace."""
        await self._execute(self._sql.delete_run, (run_id, run_id, run_id, run_id))

    # -- extras -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> dict[str, Any]:
        """The recorded steps of a run, keyed ``<node>-<step>``, in step order."""
        rows = await self._execute(self._sql.load_steps, (run_id,), fetch=True)
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
        """Save a step, new trace entries, the changed keys of the shared state and the record
        they led to in one statement.

        Everything arrives JSON-encoded; ``state_json`` is a run record without its trace (and,
        with ``shared``, without its shared state), which :meth:`load_run` puts back from the rows.
        """
        args: list[Any] = []
        if step is not None:
            args += [run_id, *step]
        if trace_rows:
            args += [run_id, *(list(column) for column in zip(*trace_rows))]
        with_state = shared is None or bool(shared)
        if with_state:
            replace = shared is None or shared.replace
            puts = [] if shared is None else shared.puts
            appends = [] if shared is None else shared.appends
            args += [run_id, replace, [p[0] for p in puts], [d[0] for d in shared.drops] if shared else [],
                     [r[0] for r in shared.resets] if shared else []]
            keys = [p[0] for p in puts] + [a[0] for a in appends]
            parts = [0] * len(puts) + [a[2] for a in appends]
            positions = [p[1] for p in puts] + [a[1] for a in appends]
            values = [p[2] for p in puts] + [a[3] for a in appends]
            args += [run_id, keys, parts, positions, values]
        args += [run_id, state_json, params_json]
        query = self._sql.checkpoint(step is not None, bool(trace_rows), with_state)
        await self._execute(query, tuple(args))

    async def load_checkpoint(
        self, run_id: str, *, unless_rev: str | None = None
    ) -> tuple[Any, int, list[tuple[str, int, int]] | None] | str | None:
        """The run's state (trace and shared state included), how many trace entries are kept
        as rows, and its per-key rows; :data:`UNCHANGED` if its revision is ``unless_rev``."""
        rows = await self._execute(self._sql.load_run, (unless_rev, unless_rev, run_id), fetch=True)
        if not rows:
            return None
        state_json, trace_json, shared_json = rows[0]
        state = json.loads(state_json)
        if unless_rev is not None and isinstance(state, dict) and state.get("rev") == unless_rev:
            return UNCHANGED
        keys = None
        if isinstance(state, dict) and state.pop(SHARED_ROWS_KEY, None):
            state["shared"], keys = assemble_shared(json.loads(shared_json) if shared_json else [])
        state, count = merge_trace(state, json.loads(trace_json) if trace_json else [])
        return state, count, keys

    @asynccontextmanager
    async def run_lock(self, run_id: str, *, timeout: float | None = 60.0) -> AsyncIterator[None]:
        """Hold an exclusive lock on ``run_id`` across every process using this database.

        A session-level ``pg_advisory_lock`` on a dedicated connection, held until the block
        exits (or the process dies, when PostgreSQL releases it). Waits at most ``timeout``
        seconds (``None``: forever), then raises :class:`PersistenceError` naming the run.
        """
        psycopg = self._psycopg
        key = advisory_key(self.table_prefix, run_id)
        try:
            conn = await self._connect()
        except psycopg.Error as exc:
            raise self._error(f"connecting for the lock on run {run_id!r}", exc) from exc
        try:
            wait_ms = 0 if timeout is None else max(1, round(timeout * 1000))
            try:
                await conn.execute(f"SET lock_timeout = {wait_ms}")
                await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg.errors.LockNotAvailable as exc:
                raise RunLockTimeoutError(
                    f"timed out after {timeout}s waiting for the lock on run {run_id!r}: another "
                    f"process is running a turn of it. Retry later, or pass a longer "
                    f"run_lock(..., timeout=...)."
                ) from exc
            except psycopg.Error as exc:
                raise self._error(f"taking the lock on run {run_id!r}", exc) from exc
            try:
                yield
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except psycopg.Error:
                    pass  # closing the session below releases the lock anyway
        finally:
            await conn.close()

    async def close(self) -> None:
        """Close the idle connections of the running event loop; later calls reconnect."""
        loop = asyncio.get_running_loop()
        self._lifetimes.pop(loop, None)
        await _close_all(self._idle.pop(loop, []))

    def __repr__(self) -> str:
        return f"PostgresPersistence({redact(self.dsn)!r}, table_prefix={self.table_prefix!r})"

    # -- connections --------------------------------------------------------------------------

    async def _execute(self, query: Any, args: tuple[Any, ...], *, fetch: bool = False) -> list[Any]:
        """Run one statement (atomic on its own: connections are in autocommit mode)."""
        psycopg = self._psycopg
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            conn, reused = await self._acquire(loop)
            try:
                await self._ensure_schema(conn)
                cursor = await conn.execute(query, args)
                rows = await cursor.fetchall() if fetch else []
            except psycopg.Error as exc:
                # An idle connection the server dropped (restart, idle timeout) is retried
                # once on a new one: every statement here is an idempotent upsert, delete or read.
                if reused and conn.broken and attempt == 1:
                    await conn.close()
                    continue
                await self._release(loop, conn)
                raise self._error("a query", exc) from exc
            except BaseException:
                await conn.close()
                raise
            await self._release(loop, conn)
            return rows
        raise AssertionError("unreachable")

    async def _connect(self) -> AsyncConnection[Any]:
        return await self._psycopg.AsyncConnection.connect(  # type: ignore[no-any-return]
            self.dsn, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
        )

    async def _acquire(self, loop: asyncio.AbstractEventLoop) -> tuple[AsyncConnection[Any], bool]:
        idle = self._idle.get(loop)
        if idle is None:
            idle = self._idle[loop] = []
            # asyncio.run() closes async generators before it closes its loop: this one
            # closes the loop's idle connections there.
            lifetime = _close_at_loop_end(idle)
            await lifetime.__anext__()
            self._lifetimes[loop] = lifetime
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
        try:
            return await self._connect(), False
        except self._psycopg.Error as exc:
            raise self._error("connecting", exc) from exc

    async def _release(self, loop: asyncio.AbstractEventLoop, conn: AsyncConnection[Any]) -> None:
        idle = self._idle.get(loop)
        clean = conn.info.transaction_status == self._psycopg.pq.TransactionStatus.IDLE
        if idle is None or conn.closed or not clean or len(idle) >= self.pool_size:
            await conn.close()
        else:
            idle.append(conn)

    async def _ensure_schema(self, conn: AsyncConnection[Any]) -> None:
        if self._schema_ready:
            return
        async with conn.transaction():
            # Replicas starting together would race on CREATE TABLE IF NOT EXISTS.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_key("schema", self.table_prefix),)
            )
            for statement in self._sql.schema:
                await conn.execute(statement)
        self._schema_ready = True

    def _error(self, doing: str, exc: BaseException) -> PersistenceError:
        return PersistenceError(
            f"PostgreSQL error during {doing} on {redact(self.dsn)} "
            f"(tables {self.table_prefix}_runs, _steps, _trace): {exc}. Check that "
            f"the server is up and the DSN (or {DSN_ENV}) names a database this user may write."
        )


async def _close_all(connections: list[AsyncConnection[Any]]) -> None:
    while connections:
        await connections.pop().close()


async def _close_at_loop_end(idle: list[AsyncConnection[Any]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await _close_all(idle)
