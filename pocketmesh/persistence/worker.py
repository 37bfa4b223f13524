"""One thread that owns a SQLite connection: jobs go in through a queue, results come back
to each caller's event loop, and writes queued together share one commit."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

Statement = tuple[str, Sequence[Any]]
Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class ConnectionWorker:
    """The worker-thread side of :class:`~pocketmesh.persistence.sqlite.SQLitePersistence`.

    Subclasses provide ``_connection()`` (the thread's connection) and ``_write(statements)``
    (one transaction); jobs calling ``_write`` that queue up behind each other are committed
    together, each in its own savepoint.
    """

    _jobs: queue.SimpleQueue[Job | None]
    _thread: threading.Thread | None
    _lock: threading.Lock

    def _connection(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _write(self, statements: list[Statement]) -> None:
        raise NotImplementedError

    # -- worker-thread side -----------------------------------------------------------------
    #
    # One thread owns the connection. Jobs go in through a queue and results come back with
    # call_soon_threadsafe: cheaper than run_in_executor's two chained futures per call, and
    # each future carries its own loop, so the store serves several event loops in turn.

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
