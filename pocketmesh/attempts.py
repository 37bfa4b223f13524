"""One execution attempt of a node: bounded by the node's ``timeout``, logged when it fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import clock
from .current import current_run
from .log import log_retry
from .threads import call

if TYPE_CHECKING:
    from .node import BaseNode


async def attempt_once(node: BaseNode, method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call ``method(*args)`` (``args`` ends with the attempt number), within ``node.timeout``.

    An attempt that overruns raises ``TimeoutError`` naming the node, the attempt and the
    limit. A synchronous method cannot be stopped from outside: it keeps its worker thread
    until it returns, and its result is dropped.
    """
    timeout = node.timeout
    if timeout is None:
        return await call(method, *args)
    deadline = clock.timeout(timeout)
    try:
        async with deadline:
            return await call(method, *args)
    except TimeoutError:
        if not deadline.expired():
            raise  # the method's own TimeoutError, not the deadline's
        name = getattr(method, "__name__", "execute")
        raise TimeoutError(
            f"{node.name}.{name}() attempt {args[-1] + 1} of {node.max_retries} took longer than "
            f"timeout={timeout:g}s; make the work faster, or raise the node's set_options(timeout=...)."
        ) from None


def log_failed_attempt(node: BaseNode, attempt: int, error: BaseException, wait: float | None) -> None:
    """DEBUG-log a failed attempt, naming the node by its id in the run when there is one."""
    ctx = current_run()
    node_id = ctx.qualify(ctx.frames[-1].node or node.name) if ctx is not None and ctx.frames else node.name
    log_retry(None if ctx is None else ctx.run_id, node_id, attempt, node.max_retries, error, wait)
