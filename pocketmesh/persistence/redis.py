"""Redis: runs shared by several processes, with expiry of finished runs and a per-run lock.

Needs the ``redis`` extra (``pip install 'pocketmesh[redis]'``). Keys, under ``prefix``:

- ``<prefix>run:<run_id>``    hash: ``state`` and ``params`` as JSON text
- ``<prefix>steps:<run_id>``  hash: ``<node>-<step>`` -> ``[step_id, node_name, result]``
- ``<prefix>trace:<run_id>``  hash: trace position -> ``[step, node, action]`` (the fast path's
  trace rows, see :mod:`pocketmesh.runs`)
- ``<prefix>runs``            sorted set of run ids, scored by first-save time
- ``<prefix>lock:<run_id>``   the holder's token while :meth:`RedisPersistence.run_lock` is held

Writes use MULTI/EXEC, so they need one Redis server (or a primary), not Redis Cluster.
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

from ..errors import PersistenceError, RunLockTimeoutError
from ..types import Params
from .base import TraceRow, merge_trace

if TYPE_CHECKING:
    from redis.asyncio import Redis

URL_ENV = "POCKETMESH_REDIS_URL"
FINISHED = frozenset({"completed", "failed", "canceled"})

# Delete / extend the lock only while it still holds our token: a lease that expired and
# was taken by another process must not be released or extended by us.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


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


def _milliseconds(name: str, value: float | datetime.timedelta | None) -> int | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    if not seconds > 0:
        raise ValueError(
            f"{name} must be a positive number of seconds (or a timedelta), got {value!r}; "
            f"pass None to keep finished runs forever."
        )
    return max(1, round(seconds * 1000))


class RedisPersistence:
    """Runs in Redis, for several ``pocketmesh serve`` replicas sharing one server.

    A step and the state it led to are written in one MULTI/EXEC transaction. With
    ``finished_ttl`` (seconds or a timedelta), a run saved as completed, failed or canceled
    expires, with its steps, that long after its last save. One client is kept per event loop
    and closed when that loop ends, so the store is not bound to the loop that first used it.
    :meth:`run_lock` serializes turns of one run across processes.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "pocketmesh:",
        finished_ttl: float | datetime.timedelta | None = None,
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
        self._ttl_ms = _milliseconds("finished_ttl", finished_ttl)
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

    def lock_key(self, run_id: str) -> str:
        """The key :meth:`run_lock` holds."""
        return f"{self.prefix}lock:{run_id}"

    @property
    def index_key(self) -> str:
        """The sorted set of run ids, by first-save time."""
        return f"{self.prefix}runs"

    # -- the five methods -------------------------------------------------------------------

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""
        status = state.get("status") if isinstance(state, dict) else None
        await self._save(run_id, json.dumps(state), json.dumps(params), None, status)

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state (its trace put back), or ``None``."""
        loaded = await self.load_checkpoint(run_id)
        return None if loaded is None else loaded[0]

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""
        client = await self._client()
        field, value = _step_entry(str(step_id), node_name, json.dumps(result))
        await self._call(client.hset(self.steps_key(run_id), field, value))

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first (expired runs are dropped from the index here)."""
        client = await self._client()
        run_ids: list[str] = await self._call(client.zrange(self.index_key, 0, -1))
        if not run_ids:
            return []
        async with client.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.exists(self.run_key(run_id))
            alive = await self._call(pipe.execute())
        gone = [run_id for run_id, exists in zip(run_ids, alive) if not exists]
        if gone:
            await self._call(client.zrem(self.index_key, *gone))
        return [run_id for run_id, exists in zip(run_ids, alive) if exists]

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps."""
        client = await self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(self.run_key(run_id), self.steps_key(run_id), self.trace_key(run_id))
            pipe.zrem(self.index_key, run_id)
            await self._call(pipe.execute())

    # -- extras -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> dict[str, Any]:
        """The recorded steps of a run, keyed ``<node>-<step>``, in step order."""
        client = await self._client()
        entries: dict[str, str] = await self._call(client.hgetall(self.steps_key(run_id)))
        steps = [json.loads(value) for value in entries.values()]
        steps.sort(key=_step_order)
        return {f"{node}-{step}": result for step, node, result in steps}

    async def save_checkpoint(
        self,
        run_id: str,
        state_json: str,
        params_json: str,
        step: tuple[str, str, str] | None,
        trace_rows: Sequence[TraceRow] = (),
    ) -> None:
        """Save a step, new trace entries and the state they led to in one MULTI/EXEC.

        Everything arrives JSON-encoded; ``state_json`` is a run record without its trace,
        which :meth:`load_run` puts back from the rows.
        """
        status = None
        if self._ttl_ms is not None:
            state = json.loads(state_json)
            status = state.get("status") if isinstance(state, dict) else None
        await self._save(run_id, state_json, params_json, step, status, trace_rows)

    async def load_checkpoint(self, run_id: str) -> tuple[Any, int] | None:
        """The run's state (trace included) and how many trace entries are kept as rows."""
        client = await self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.hget(self.run_key(run_id), "state")
            pipe.hgetall(self.trace_key(run_id))
            state_json, trace = await self._call(pipe.execute())
        if state_json is None:
            return None
        rows = [[int(seq), *json.loads(entry)] for seq, entry in trace.items()]
        return merge_trace(json.loads(state_json), rows)

    @asynccontextmanager
    async def run_lock(
        self, run_id: str, *, timeout: float | None = 60.0, lease: float = 30.0
    ) -> AsyncIterator[None]:
        """Hold an exclusive lock on ``run_id`` across every process using this server.

        ``SET NX PX`` with a random token, renewed every ``lease / 3`` seconds while held, so a
        crashed holder frees the run after at most ``lease`` seconds. Waits (with growing,
        jittered pauses) at most ``timeout`` seconds (``None``: forever), then raises
        :class:`PersistenceError` naming the run.
        """
        lease_ms = _milliseconds("lease", lease)
        assert lease_ms is not None
        client = await self._client()
        key, token = self.lock_key(run_id), secrets.token_hex(16)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while not await self._call(client.set(key, token, nx=True, px=lease_ms)):
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
        renewer = asyncio.get_running_loop().create_task(self._renew(client, key, token, lease_ms))
        try:
            yield
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
            # A failed release is not raised over the block's own outcome: the lease ends it.
            with suppress(PersistenceError):
                await self._call(client.eval(_RELEASE, 1, key, token))

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
        trace_rows: Sequence[TraceRow] = (),
    ) -> None:
        client = await self._client()
        keys = run_key, steps_key, trace_key = (
            self.run_key(run_id), self.steps_key(run_id), self.trace_key(run_id)
        )
        async with client.pipeline(transaction=True) as pipe:
            if step is not None:
                pipe.hset(steps_key, *_step_entry(*step))
            if trace_rows:
                pipe.hset(trace_key, mapping={row[0]: json.dumps(row[1:]) for row in trace_rows})
            pipe.hset(run_key, mapping={"state": state_json, "params": params_json})
            pipe.zadd(self.index_key, {run_id: time.time()}, nx=True)
            if self._ttl_ms is not None:
                for key in keys:
                    if status in FINISHED:
                        pipe.pexpire(key, self._ttl_ms)
                    else:
                        pipe.persist(key)
            await self._call(pipe.execute())

    async def _renew(self, client: Redis, key: str, token: str, lease_ms: int) -> None:
        while True:
            await asyncio.sleep(lease_ms / 3000)
            with suppress(Exception):  # a missed renewal is retried; the lease has slack
                await client.eval(_EXTEND, 1, key, token, lease_ms)

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


def _step_entry(step_id: str, node_name: str, result_json: str) -> tuple[str, str]:
    """The steps-hash field and value of one step; the value keeps ids for ordering."""
    return f"{node_name}-{step_id}", f"[{json.dumps(step_id)},{json.dumps(node_name)},{result_json}]"


def _step_order(step: list[Any]) -> tuple[int, int, str, str]:
    step_id, node_name = step[0], step[1]
    if step_id.isascii() and step_id.isdigit():
        return (0, int(step_id), "", node_name)
    return (1, 0, step_id, node_name)


async def _close_at_loop_end(client: Redis) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()
