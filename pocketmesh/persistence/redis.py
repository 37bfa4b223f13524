"""Redis: runs shared by several processes, with expiry of finished runs and a per-run lock.

Needs the ``redis`` extra (``pip install 'pocketmesh[redis]'``). Keys, under ``prefix``:

- ``<prefix>run:<run_id>``    hash: ``state`` and ``params`` as JSON text
- ``<prefix>steps:<run_id>``  hash: ``<node>-<step>`` -> ``[step_id, node_name, result]``
- ``<prefix>trace:<run_id>``  hash: trace position -> ``[step, node, action]`` (the fast path's
  trace rows, see :mod:`pocketmesh.runs`)
- ``<prefix>state:<run_id>``  hash: the fast path's shared state, key by key
  (:mod:`pocketmesh.persistence.scripts`)
- ``<prefix>runs``            sorted set of run ids, scored by first-save time
- ``<prefix>names``           the same run ids, scored 0, for listing by prefix in name order
- ``<prefix>lock:<run_id>``   the holder's token while :meth:`RedisPersistence.run_lock` is held

A write is one script (one atomic step), fenced by the run's lock when this process holds it
(see :mod:`pocketmesh.persistence.lease`); writes need one Redis server (or a primary), not
Redis Cluster.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import random
import re
import secrets
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from ..errors import PersistenceError, RunLockLostError, RunLockTimeoutError
from ..types import Params
from .base import SHARED_ROWS_KEY, UNCHANGED, TraceRow, merge_trace, prefix_end
from .lease import DEFAULT_LEASE, LOST_MARKER, RELEASE, Lease, keep, milliseconds, release_later
from .scripts import LOAD, SAVE, state_args, state_rows, step_entry, step_order

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ..state import Pending

URL_ENV = "POCKETMESH_REDIS_URL"
FINISHED = frozenset({"completed", "failed", "canceled"})

def _import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise ImportError(
            f"RedisPersistence needs the redis package, which is not installed ({exc}). "
            f"Install the extra: pip install 'pocketmesh[redis]'"
        ) from exc
    return redis


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and reprs."""
    return re.sub(r"(://[^:/@]*:)[^/]*@", r"\1***@", url)


class RedisPersistence:
    """Runs in Redis, for several ``pocketmesh serve`` replicas sharing one server.

    A step and the state it led to are written in one MULTI/EXEC transaction. With
    ``finished_ttl`` (seconds or a timedelta), a run saved as completed, failed or canceled
    expires, with its steps, that long after its last save. One client is kept per event loop
    and closed when that loop ends, so the store is not bound to the loop that first used it.
    :meth:`run_lock` serializes turns of one run across processes; its lease lasts
    ``lock_lease`` seconds (default 10) without renewal, and a holder that loses it can write
    nothing more to the runs it covers.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "pocketmesh:",
        finished_ttl: float | datetime.timedelta | None = None,
        lock_lease: float = DEFAULT_LEASE,
    ) -> None:
        url = url if url is not None else os.environ.get(URL_ENV)
        if not url:
            raise ValueError(
                f"RedisPersistence has no server to connect to: pass "
                f"RedisPersistence(url='redis://host:6379/0') or set {URL_ENV}."
            )
        self._redis = _import_redis()
        self.url = url
        self.prefix = prefix
        self.finished_ttl = finished_ttl
        self._ttl_ms = milliseconds("finished_ttl", finished_ttl)
        if isinstance(lock_lease, bool) or not isinstance(lock_lease, (int, float)) or not lock_lease > 0:
            raise ValueError(f"lock_lease must be a positive number of seconds, got {lock_lease!r}; e.g. lock_lease=10.")
        self.lock_lease = float(lock_lease)
        # Run id -> the lease of this process fencing its writes (see run_lock).
        self._fences: dict[str, Lease] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._lifetimes: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()

    # -- keys ---------------------------------------------------------------------------------

    def run_key(self, run_id: str) -> str:
        """The hash holding the run's state and params."""
        return f"{self.prefix}run:{run_id}"

    def steps_key(self, run_id: str) -> str:
        """The hash holding the run's steps."""
        return f"{self.prefix}steps:{run_id}"

    def trace_key(self, run_id: str) -> str:
        """The hash holding the run's trace rows."""
        return f"{self.prefix}trace:{run_id}"

    def state_key(self, run_id: str) -> str:
        """The hash holding the run's shared state, key by key (fast path)."""
        return f"{self.prefix}state:{run_id}"

    def lock_key(self, run_id: str) -> str:
        """The key :meth:`run_lock` holds."""
        return f"{self.prefix}lock:{run_id}"

    @property
    def index_key(self) -> str:
        """The sorted set of run ids, by first-save time."""
        return f"{self.prefix}runs"

    @property
    def names_key(self) -> str:
        """The sorted set of run ids in name order (all scored 0), for :meth:`list_runs_with_prefix`."""
        return f"{self.prefix}names"

    # -- the five methods -------------------------------------------------------------------

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        status = state.get("status") if isinstance(state, dict) else None
        await self._save(run_id, json.dumps(state), json.dumps(params), None, status, (), None)

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state (its trace put back), or ``None``."""
        loaded = await self.load_checkpoint(run_id)
        return None if loaded is None else loaded[0]

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        await self._write(run_id, "", "", step_entry(str(step_id), node_name, json.dumps(result)), None)

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first (expired runs are dropped from the index here)."""
        client = await self._client()
        return await self._alive(client, await self._call(client.zrange(self.index_key, 0, -1)))

    async def list_runs_with_prefix(self, prefix: str) -> list[str]:
        """The ids of the runs whose id starts with ``prefix``, in name order; reads only those."""
        client = await self._client()
        end = prefix_end(prefix)
        run_ids = await self._call(client.zrangebylex(self.names_key, f"[{prefix}", "+" if end is None else f"({end}"))
        return await self._alive(client, run_ids)

    async def _alive(self, client: Redis, run_ids: list[str]) -> list[str]:
        """``run_ids`` that still exist; expired ones are dropped from both indexes."""
        if not run_ids:
            return []
        async with client.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.exists(self.run_key(run_id))
            alive = await self._call(pipe.execute())
        gone = [run_id for run_id, exists in zip(run_ids, alive) if not exists]
        if gone:
            async with client.pipeline(transaction=True) as pipe:
                pipe.zrem(self.index_key, *gone)
                pipe.zrem(self.names_key, *gone)
                await self._call(pipe.execute())
        return [run_id for run_id, exists in zip(run_ids, alive) if exists]

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps."""
        client = await self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(self.run_key(run_id), self.steps_key(run_id), self.trace_key(run_id), self.state_key(run_id))
            pipe.zrem(self.index_key, run_id)
            pipe.zrem(self.names_key, run_id)
            await self._call(pipe.execute())

    # -- extras -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> dict[str, Any]:
        """The recorded steps of a run, keyed ``<node>-<step>``, in step order."""
        client = await self._client()
        entries: dict[str, str] = await self._call(client.hgetall(self.steps_key(run_id)))
        steps = [json.loads(value) for value in entries.values()]
        steps.sort(key=step_order)
        return {f"{node}-{step}": result for step, node, result in steps}

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
        they led to in one script (one atomic step).

        Everything arrives JSON-encoded; ``state_json`` is a run record without its trace (and,
        with ``shared``, without its shared state), which :meth:`load_run` puts back.
        """
        status = None
        if self._ttl_ms is not None:
            state = json.loads(state_json)
            status = state.get("status") if isinstance(state, dict) else None
        await self._save(run_id, state_json, params_json, step, status, trace_rows, shared)

    async def load_checkpoint(
        self, run_id: str, *, unless_rev: str | None = None
    ) -> tuple[Any, int, list[tuple[str, int, int]] | None] | str | None:
        """The run's state (trace and shared state included), how many trace entries are kept
        as rows, and its per-key rows; :data:`UNCHANGED` if its revision is ``unless_rev``."""
        client = await self._client()
        keys = (self.run_key(run_id), self.trace_key(run_id), self.state_key(run_id))
        needle = "" if unless_rev is None else f'"rev":{json.dumps(unless_rev)}'
        loaded = await self._call(client.eval(LOAD, 3, *keys, needle))
        if loaded is None:
            return None
        state = json.loads(loaded[0])
        if len(loaded) == 1:
            if isinstance(state, dict) and state.get("rev") == unless_rev:
                return UNCHANGED
            return await self.load_checkpoint(run_id)
        trace = loaded[1]
        rows = [[int(seq), *json.loads(entry)] for seq, entry in zip(trace[::2], trace[1::2])]
        shared_keys = None
        if isinstance(state, dict) and state.pop(SHARED_ROWS_KEY, None):
            state["shared"], shared_keys = state_rows(loaded[2])
        state, count = merge_trace(state, rows)
        return state, count, shared_keys

    @asynccontextmanager
    async def run_lock(
        self, run_id: str, *, timeout: float | None = 60.0, lease: float | None = None
    ) -> AsyncIterator[Lease]:
        """Hold an exclusive lock on ``run_id`` across every process using this server.

        ``SET NX PX`` with a random token, renewed every ``lease / 3`` seconds while held
        (``lease`` defaults to ``lock_lease``), so a crashed holder frees the run after at most
        ``lease`` seconds. Waits (with growing, jittered pauses) at most ``timeout`` seconds
        (``None``: forever), then raises :class:`RunLockTimeoutError` naming the run. Yields a
        :class:`~pocketmesh.persistence.lease.Lease`: while it is held, writes of the run (and
        of the runs it ``cover``-s) are refused once the lease is lost.
        """
        seconds = self.lock_lease if lease is None else lease
        lease_ms = milliseconds("lease", seconds)
        assert lease_ms is not None
        client = await self._client()
        loop = asyncio.get_running_loop()
        key, token = self.lock_key(run_id), secrets.token_hex(16)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            sent = loop.time()
            if await self._call(client.set(key, token, nx=True, px=lease_ms)):
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise RunLockTimeoutError(
                    f"timed out after {timeout}s waiting for the lock on run {run_id!r} "
                    f"(key {key!r}): another process is running a turn of it. Retry later, or "
                    f"pass a longer run_lock(..., timeout=...)."
                )
            nap = pause * random.uniform(0.5, 1.0)  # jitter: waiters do not retry in step
            await asyncio.sleep(nap if left is None else min(left, nap))
            pause = min(pause * 2, 0.25)
        held = Lease(self._fences, run_id, key, token, lease_ms / 1000, sent + lease_ms / 1000)
        renewer = loop.create_task(keep(client, held), name=f"lease:{run_id}")
        try:
            yield held
        finally:
            held.end()
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
            try:  # a lease lost to another holder is not theirs to lose: the script checks the token
                await self._call(client.eval(RELEASE, 1, key, token))
            except PersistenceError:
                # Redis is away (a restart, a cut): let go as soon as it answers again, rather
                # than keep every waiter out for the rest of the lease.
                retry = loop.create_task(release_later(client, held), name=f"release:{run_id}")
                self._releases.add(retry)
                retry.add_done_callback(self._releases.discard)

    async def close(self) -> None:
        """Close the running event loop's client; later calls reconnect."""
        loop = asyncio.get_running_loop()
        self._lifetimes.pop(loop, None)
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisPersistence({redact(self.url)!r}, prefix={self.prefix!r})"

    # -- internals ----------------------------------------------------------------------------

    async def _save(
        self,
        run_id: str,
        state_json: str,
        params_json: str,
        step: tuple[str, str, str] | None,
        status: Any,
        trace_rows: Sequence[TraceRow],
        shared: Pending | None,
    ) -> None:
        entry = None if step is None else step_entry(*step)
        await self._write(run_id, state_json, params_json, entry, status, trace_rows, state_args(shared))

    async def _write(
        self,
        run_id: str,
        state_json: str,
        params_json: str,
        step: tuple[str, str] | None,
        status: Any,
        trace_rows: Sequence[TraceRow] = (),
        shared: tuple[str, list[str], list[str]] = ("", [], []),
    ) -> None:
        """One atomic write of a run's step, trace rows, shared-state rows and record
        (``state_json`` empty: no record), fenced by this process's lease on the run, if it
        holds one."""
        client = await self._client()
        lease = self._fences.get(run_id)
        keys = [
            self.run_key(run_id), self.steps_key(run_id), self.trace_key(run_id),
            self.index_key, self.names_key, lease.key if lease is not None else self.lock_key(run_id),
            self.state_key(run_id),
        ]
        replace, deletes, sets = shared
        args: list[Any] = [
            lease.token if lease is not None else "", run_id, time.time(),
            "" if self._ttl_ms is None else self._ttl_ms, "1" if status in FINISHED else "0",
            state_json, params_json, *(step or ("", "")), len(trace_rows), replace, len(deletes), len(sets) // 2,
        ]
        for row in trace_rows:
            args += [row[0], json.dumps(row[1:])]
        args += deletes
        args += sets
        try:
            await self._call(client.eval(SAVE, len(keys), *keys, *args))
        except PersistenceError as error:
            if lease is None or LOST_MARKER not in str(error.__cause__):
                raise
            detail = lease.lost or "the lock key holds another holder's token, or none: the lease ran out"
            lease.lose(detail)
            raise RunLockLostError(run_id, detail) from None

    async def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._redis.asyncio.Redis.from_url(self.url, decode_responses=True)
            self._clients[loop] = client
            # asyncio.run() closes async generators before it closes its loop: this one
            # closes the loop's client there.
            lifetime = _close_at_loop_end(client)
            await lifetime.__anext__()
            self._lifetimes[loop] = lifetime
        return client

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except self._redis.RedisError as exc:
            raise PersistenceError(
                f"Redis error on {redact(self.url)} (keys {self.prefix}*): {exc}. Check that the "
                f"server is up and the URL (or {URL_ENV}) is right."
            ) from exc


async def _close_at_loop_end(client: Redis) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()
