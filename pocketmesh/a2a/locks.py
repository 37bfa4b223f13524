"""Locks that keep the turns of one A2A task apart, in one process and across replicas.

- :class:`KeyedLocks`: one ``asyncio.Lock`` per key, for one process.
- :class:`FileRunLocks`: per-run locks shared by every process on one machine, as POSIX record
  locks on single bytes of a lock file (for several servers on one SQLite file). The kernel
  drops them when their process dies, so a killed server never leaves a task locked.
- :class:`TurnLocks`: what the request handler and the executor hold around a turn. It takes the
  in-process lock, then the store's cross-process lock: ``persistence.run_lock(task_id)`` when
  the backend has one (PostgreSQL, Redis), a :class:`FileRunLocks` beside a SQLite file. It is
  re-entrant within one held turn (a :class:`Turn`), so the executor the handler starts does
  not wait on its own turn; once the turn is let go, nothing spawned inside it still counts as
  holding it. A store whose lock is a lease (Redis) reports a lost lease to the turn, which
  stops the executor (:meth:`Turn.guard`) before it writes anything more.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from a2a.utils.errors import InternalError

from ..errors import RunLockLostError, RunLockTimeoutError

RunLock = Callable[[str], AbstractAsyncContextManager[Any]]
"""``run_lock(run_id)``: an async context manager holding ``run_id`` across processes."""

DEFAULT_POSTGRES_TURNS = 16
"""Turns run at once per server on PostgreSQL when ``max_concurrent_turns`` is not given: each
holds one connection for its lock and uses pooled ones for its queries, and PostgreSQL's
default ``max_connections`` is 100 for every replica together."""


class KeyedLocks:
    """One ``asyncio.Lock`` per key (a task id): same key in turn, different keys in parallel."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def hold(self, key: str) -> _KeyHold:
        """Hold the lock of ``key`` for the ``async with`` body."""
        return _KeyHold(self._locks, key)

    def __len__(self) -> int:
        return len(self._locks)


class _KeyHold:
    """``async with`` one key's lock, registered while anyone holds or waits for it."""

    __slots__ = ("key", "lock", "locks")

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], key: str) -> None:
        self.locks = locks
        self.key = key
        lock, users = locks.get(key, (None, 0))
        self.lock = asyncio.Lock() if lock is None else lock
        locks[key] = (self.lock, users + 1)

    async def __aenter__(self) -> None:
        try:
            await self.lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        self.lock.release()
        self._leave()

    def _leave(self) -> None:
        lock, users = self.locks[self.key]
        if users <= 1:
            del self.locks[self.key]
        else:
            self.locks[self.key] = (lock, users - 1)


_SLOTS = 1 << 48  # byte offsets in the lock file; a collision only makes two runs wait in turn


class FileRunLocks:
    """Per-run locks across the processes of one machine: ``fcntl`` locks on a lock file.

    Each run id hashes to one byte of ``path``; a process holds that byte while it runs a turn.
    POSIX record locks belong to the process (two holders in one process do not exclude each
    other, and closing any descriptor of the file drops them all), so in-process holders queue
    on a :class:`KeyedLocks` per byte first and the one descriptor stays open for the process's
    life. Waiting polls with growing pauses, so a waiter can be cancelled. Not available on
    Windows (no ``fcntl``): there, :func:`cross_process_lock` returns ``None``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import fcntl  # noqa: F401  (fail here, on a platform without it)

        self.path = Path(path)
        self._fd: int | None = None
        self._slots = KeyedLocks()

    @staticmethod
    def slot(run_id: str) -> int:
        """The byte of the lock file that stands for ``run_id``."""
        digest = hashlib.blake2b(run_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % _SLOTS

    @asynccontextmanager
    async def run_lock(self, run_id: str, *, timeout: float | None = 60.0) -> AsyncIterator[None]:
        """Hold ``run_id`` against every process using this lock file; wait at most ``timeout`` s."""
        import fcntl

        offset = self.slot(run_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        async with self._slots.hold(str(offset)):
            fd = self._descriptor()
            pause = 0.001
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset, os.SEEK_SET)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise RunLockTimeoutError(
                        f"timed out after {timeout}s waiting for the lock on run {run_id!r} in "
                        f"{self.path}: another process on this machine is running a turn of it. "
                        f"Retry later, or pass a longer run_lock(..., timeout=...)."
                    )
                await asyncio.sleep(pause if left is None else min(left, pause))
                pause = min(pause * 2, 0.05)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset, os.SEEK_SET)

    def _descriptor(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def __repr__(self) -> str:
        return f"FileRunLocks({str(self.path)!r})"


def cross_process_lock(persistence: Any) -> RunLock | None:
    """The per-run lock replicas on ``persistence`` share, or ``None`` when it has none.

    A backend's own ``run_lock`` (PostgreSQL, Redis) first; for SQLite, ``fcntl`` locks on
    ``<database file>.locks``; nothing for in-memory stores, which one process alone can see.
    """
    run_lock = getattr(persistence, "run_lock", None)
    if callable(run_lock):
        return run_lock  # type: ignore[no-any-return]
    from ..persistence import SQLitePersistence

    if isinstance(persistence, SQLitePersistence):
        try:
            return FileRunLocks(Path(f"{persistence.path}.locks")).run_lock
        except ImportError:  # no fcntl: one server per SQLite file
            return None
    return None


def default_turn_limit(persistence: Any) -> int | None:
    """How many turns a server runs at once by default on ``persistence`` (``None``: no limit)."""
    from ..persistence import PostgresPersistence

    return DEFAULT_POSTGRES_TURNS if isinstance(persistence, PostgresPersistence) else None


class TurnLostError(InternalError):
    """A turn stopped because its holder lost the task's cross-process lock mid-turn; answered
    to the client as a JSON-RPC internal error (-32603) saying to send the message again."""

    def __init__(self, task_id: str, detail: str) -> None:
        super().__init__(
            message=(
                f"the turn of task {task_id!r} was stopped: this server lost the task's lock ({detail}), "
                f"and another replica may be running the task now. Nothing of this turn was saved after "
                f"that; send the message again (same messageId) to get its answer."
            )
        )


class Turn:
    """One held turn of a task: who holds it, whether it is still held, whether its lock was lost.

    A task spawned inside the turn (the SDK's producer runs the executor in a copy of the
    request's context) sees the turn as held only while :meth:`TurnLocks.hold` has not let go;
    after that it must take the turn itself, so no code can run a task's turn unlocked.
    """

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.active = True
        self.lost: str | None = None
        """Why the cross-process lock was lost, or ``None`` while it is held."""
        self._on_loss: list[Callable[[], None]] = []
        self._inside = 0
        self._all_out = asyncio.Event()
        self._all_out.set()

    @asynccontextmanager
    async def _join(self) -> AsyncIterator[None]:
        """Count a re-entrant holder (the executor), whom the turn waits for before it ends."""
        self._inside += 1
        self._all_out.clear()
        try:
            yield
        finally:
            self._inside -= 1
            if not self._inside:
                self._all_out.set()

    async def _until_all_out(self) -> None:
        await self._all_out.wait()

    def lose(self, detail: str) -> None:
        """Record that the lock behind this turn is gone, and tell everyone who asked."""
        if self.lost is None:
            self.lost = detail
            for callback in list(self._on_loss):
                callback()

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Stop the body (a :class:`TurnLostError` instead of its result) once the lock is lost,
        and turn a write refused for a lost lock into the same error."""
        task = asyncio.current_task()
        assert task is not None
        stopped = False

        def stop() -> None:
            nonlocal stopped
            stopped = True
            task.cancel()

        self._on_loss.append(stop)
        try:
            if self.lost is not None:
                raise TurnLostError(self.task_id, self.lost)
            yield
        except asyncio.CancelledError:
            if stopped and task.uncancel() == 0:
                raise TurnLostError(self.task_id, self.lost or "lease lost") from None
            raise
        except RunLockLostError as error:
            self.lose(error.detail)
            raise TurnLostError(self.task_id, error.detail) from error
        finally:
            self._on_loss.remove(stop)


_HELD: contextvars.ContextVar[Mapping[str, Turn]] = contextvars.ContextVar("pocketmesh_turns_held", default={})


class TurnLocks:
    """One turn per task at a time, in this process and in every replica on the same store.

    ``max_concurrent_turns`` bounds the turns this process runs at once (waiting requests queue);
    ``None`` means :func:`default_turn_limit`, ``0`` no limit.
    """

    def __init__(self, persistence: Any, *, max_concurrent_turns: int | None = None) -> None:
        if max_concurrent_turns is not None and (
            isinstance(max_concurrent_turns, bool) or not isinstance(max_concurrent_turns, int) or max_concurrent_turns < 0
        ):
            raise ValueError(
                f"max_concurrent_turns must be a whole number >= 0 (0: no limit), got {max_concurrent_turns!r:.40}; "
                f"e.g. max_concurrent_turns=16."
            )
        self._local = KeyedLocks()
        self.shared_lock = cross_process_lock(persistence)
        limit = default_turn_limit(persistence) if max_concurrent_turns is None else max_concurrent_turns
        self.max_concurrent_turns = limit or None
        self._slots = asyncio.Semaphore(limit) if limit else None

    @asynccontextmanager
    async def hold(self, task_id: str, *, covers: Sequence[str] = ()) -> AsyncIterator[Turn]:
        """Hold the turn of ``task_id`` for the ``async with`` body (at once if this turn holds it).

        ``covers``: more run ids whose writes the store's lock lease fences, besides ``task_id``
        (the task's own record), where the store fences writes (Redis).
        """
        held = _HELD.get()
        current = held.get(task_id)
        if current is not None and current.active:
            async with current._join():
                yield current
            return
        async with self._local.hold(task_id):
            if self._slots is not None:
                await self._slots.acquire()
            turn = Turn(task_id)
            try:
                if self.shared_lock is None:
                    async with self._mark(held, turn):
                        yield turn
                else:
                    async with self.shared_lock(task_id) as lease:
                        _attach(lease, turn, covers)
                        async with self._mark(held, turn):
                            yield turn
            finally:
                turn.active = False
                if self._slots is not None:
                    self._slots.release()

    @staticmethod
    @asynccontextmanager
    async def _mark(held: Mapping[str, Turn], turn: Turn) -> AsyncIterator[None]:
        # Set back (not reset with a token): a caller may hold the turn across the yields of an
        # async generator, whose steps need not share one context.
        _HELD.set({**held, turn.task_id: turn})
        try:
            yield
        finally:
            _HELD.set(held)
            # Work started inside the turn (the SDK's producer runs the executor on its own)
            # may outlive the caller's part of it: the locks, and the lease's fencing of
            # writes, last until that work is done too.
            await turn._until_all_out()

    def __len__(self) -> int:
        return len(self._local)


def _attach(lease: Any, turn: Turn, covers: Sequence[str]) -> None:
    """Wire a store's lock lease (what ``run_lock`` yields, if anything) to the turn."""
    cover = getattr(lease, "cover", None)
    if callable(cover):
        for run_id in covers:
            cover(run_id)
    on_lost = getattr(lease, "on_lost", None)
    if callable(on_lost):
        on_lost(turn.lose)


class BoundedPersistence:
    """``backend`` with at most ``limit`` of its calls under way at once; the rest wait.

    PostgreSQL opens a connection for each concurrent call beyond its idle pool, and a server
    under load would otherwise run out of ``max_connections`` (shared by every replica) before
    it ran out of anything else. ``run_lock`` and ``close`` pass straight through: a held lock
    is bounded by the turn limit instead, and waiting for a call slot while holding one would
    only slow every turn down.
    """

    _UNBOUNDED = frozenset({"run_lock", "close", "aclose"})

    def __init__(self, backend: Any, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a whole number >= 1, got {limit!r:.40}; e.g. BoundedPersistence(store, 16).")
        self.backend = backend
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.backend, name)
        if name in self._UNBOUNDED or not asyncio.iscoroutinefunction(attribute):
            return attribute
        slots = self._slots

        async def bounded(*args: Any, **kwargs: Any) -> Any:
            async with slots:
                return await attribute(*args, **kwargs)

        setattr(self, name, bounded)  # built once per method
        return bounded

    def __repr__(self) -> str:
        return f"BoundedPersistence({self.backend!r}, limit={self.limit})"
