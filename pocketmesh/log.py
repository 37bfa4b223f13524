"""The ``pocketmesh`` logger; ``POCKETMESH_LOG_LEVEL`` sets its level.

What a run logs, and at which level:

- DEBUG: each step (run id, node id, action, duration) and each failed attempt of a node that
  retries (node, attempt, error, the wait before the next one);
- WARNING: a node failure its ``"error"`` edge handles (the run goes on);
- ERROR, with the traceback: a failure that ends a run, under an *error id* that the run's
  result (``RunResult.error_id``) and an A2A client's failure message carry too.

Records carry the ids as attributes as well (``run_id``, ``node_id``, ``action``,
``error_id``), for structured log handlers.
"""

from __future__ import annotations

import logging
import os
import uuid

logger = logging.getLogger("pocketmesh")


class FallbackHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints pocketmesh's records to stderr while the application has configured no logging
    (no handler on the root logger); once it has, its handlers print them and this stays quiet."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def configure_from_env() -> None:
    """Apply ``POCKETMESH_LOG_LEVEL`` (a level name such as ``DEBUG`` or a number).

    Setting it is asking to see the records: without any logging configured, they go to stderr.
    """
    level = os.environ.get("POCKETMESH_LOG_LEVEL")
    if not level:
        return
    value: int | str = int(level) if level.isdigit() else level.upper()
    try:
        logger.setLevel(value)
    except ValueError:
        logger.warning(
            "ignoring POCKETMESH_LOG_LEVEL=%r: not a logging level; use DEBUG, INFO, WARNING, "
            "ERROR or CRITICAL.",
            level,
        )
        return
    if not any(isinstance(handler, FallbackHandler) for handler in logger.handlers):
        logger.addHandler(FallbackHandler())


def debug_enabled() -> bool:
    """Whether step and retry records would be emitted (checked once per run, not per step)."""
    return logger.isEnabledFor(logging.DEBUG)


def new_error_id() -> str:
    """A short id naming one failure in the log and in what a client is told."""
    return uuid.uuid4().hex[:12]


def log_step(run_id: str, node_id: str, action: str | None, duration_ms: float | None) -> None:
    """DEBUG: a node finished its step."""
    logger.debug(
        "run %s: node %s returned %r (%.3f ms)", run_id, node_id, action, duration_ms or 0.0,
        extra={"run_id": run_id, "node_id": node_id, "action": action},
    )


def log_retry(
    run_id: str | None, node_id: str, attempt: int, attempts: int, error: BaseException, wait: float | None
) -> None:
    """DEBUG: one attempt of a node failed; ``wait`` is the pause before the next (``None``:
    it was the last attempt)."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    then = "no attempt left" if wait is None else f"retrying in {wait:g} s"
    logger.debug(
        "run %s: node %s attempt %d of %d failed: %s: %s; %s",
        run_id, node_id, attempt + 1, attempts, type(error).__name__, error, then,
        extra={"run_id": run_id, "node_id": node_id, "attempt": attempt},
    )


def log_handled(run_id: str, node_id: str, error: BaseException) -> None:
    """WARNING: a node failed and an ``"error"`` edge takes over."""
    logger.warning(
        "run %s: node %s failed, handled by an 'error' edge: %s: %s",
        run_id, node_id, type(error).__name__, error,
        extra={"run_id": run_id, "node_id": node_id},
    )


def log_run_failed(run_id: str, node_id: str | None, error: BaseException) -> str:
    """ERROR with the traceback: ``error`` ended the run. Returns the error id it is logged under."""
    error_id = new_error_id()
    where = f" at node {node_id}" if node_id else ""
    logger.error(
        "run %s failed%s (error id %s): %s: %s",
        run_id, where, error_id, type(error).__name__, error,
        exc_info=(type(error), error, error.__traceback__),
        extra={"run_id": run_id, "node_id": node_id, "error_id": error_id},
    )
    return error_id
