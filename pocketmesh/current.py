"""The run whose node is executing in this task, found through a context variable.

Kept apart from :mod:`pocketmesh.context` (which runs flows, and so imports nodes) so that
nodes can find their run without importing the orchestration loop.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import RunContext

current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("pocketmesh_run", default=None)


def current_run() -> RunContext | None:
    """The run whose node is executing in this task, if any."""
    return current.get()
