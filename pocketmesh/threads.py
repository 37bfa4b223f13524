"""Where synchronous lifecycle methods run: worker threads, so a blocking node never stalls
the event loop (a served agent keeps answering, other runs keep going).

One process-wide pool serves every run; its size is ``POCKETMESH_SYNC_WORKERS`` (default 64):
each blocked synchronous call holds one thread, and a pool as small as asyncio's default
(a few threads per core) would queue concurrent runs behind each other again. The call keeps
the caller's context variables, so a node in a thread still knows its run.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["call", "run_sync", "sync_workers"]

DEFAULT_SYNC_WORKERS = 64

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def sync_workers() -> int:
    """How many synchronous lifecycle calls may run at once (``POCKETMESH_SYNC_WORKERS``)."""
    raw = os.environ.get("POCKETMESH_SYNC_WORKERS", "").strip()
    if not raw:
        return DEFAULT_SYNC_WORKERS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"POCKETMESH_SYNC_WORKERS must be a whole number >= 1, got {raw!r}; "
            f"unset it for the default ({DEFAULT_SYNC_WORKERS})."
        )
    return int(raw)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=sync_workers(), thread_name_prefix="pocketmesh-sync")
    return _pool


async def run_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` in a worker thread with this task's context; await what it returns
    if that is awaitable (a plain ``def`` may hand back a coroutine)."""
    context = contextvars.copy_context()
    result = await asyncio.get_running_loop().run_in_executor(_executor(), context.run, fn, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def call(method: Callable[..., Any], *args: Any) -> Any:
    """Await an ``async def`` method; run any other callable through :func:`run_sync`."""
    if inspect.iscoroutinefunction(method):
        return await method(*args)
    return await run_sync(method, *args)
