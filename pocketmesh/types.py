"""Type aliases shared across the runtime."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Union

SharedState = dict[str, Any]
"""The state a run reads and mutates; JSON-serializable when a run is persisted."""

Params = dict[str, Any]
"""Parameters merged per node: flow defaults, then node defaults, then run params."""

Action = str
"""The name of an outgoing edge, returned by ``finalize``."""

WaitSeconds = Union[float, int, Callable[[int], float]]
"""A fixed wait between retries, or a function of the failed attempt (counted from 0)."""

Hook = Callable[[Any], Union[None, Awaitable[None]]]
"""A status or artifact hook; sync or async."""

DEFAULT_ACTION: Action = "default"
INPUT_REQUIRED: Action = "input-required"
COMPLETE: Action = "complete"
ERROR: Action = "error"
RESERVED_ACTIONS = frozenset({INPUT_REQUIRED, COMPLETE, ERROR})
