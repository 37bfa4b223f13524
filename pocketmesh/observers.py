"""Process-wide run observers: see every run that finishes, whoever started it.

Coverage tools use this (``pocketmesh gate`` counts which node -> action edges ran); it is
not a per-run hook: use ``on_status_update`` / ``on_artifact`` for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .log import logger

if TYPE_CHECKING:
    from .flow import Flow
    from .results import RunResult

RunObserver = Callable[["Flow", "RunResult"], object]

_observers: list[RunObserver] = []


def observe(callback: RunObserver) -> Callable[[], None]:
    """Call ``callback(flow, result)`` whenever a run of any flow stops (completed, paused,
    failed, or a stepper's step); returns a function that removes the observer."""
    if not callable(callback):
        raise TypeError(f"observe() needs a callable (flow, result) -> None, got {callback!r}.")
    _observers.append(callback)

    def remove() -> None:
        if callback in _observers:
            _observers.remove(callback)

    return remove


def notify(flow: Flow, result: RunResult) -> None:
    """Tell every observer about ``result``; an observer's failure is logged, never raised."""
    for callback in list(_observers):
        try:
            callback(flow, result)
        except Exception:
            logger.exception("run observer %r failed on run %s", callback, result.run_id)


def has_observers() -> bool:
    """True when at least one observer is registered (saves building results for nobody)."""
    return bool(_observers)
