"""The persistence protocol: five async methods, the seed's interface."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from ..types import Params

RECORD_MARKER = "pocketmesh_run"
"""The key that marks a saved object as a pocketmesh run record (its value: the format version)."""

TRACE_ROWS_KEY = "trace_rows"
"""In a record saved through a built-in backend's fast path (``save_checkpoint``): how many
trace entries the backend keeps as rows instead of inside the record."""

SHARED_ROWS_KEY = "shared_rows"
"""In a record saved through the fast path with its shared state in per-key rows: ``true``;
the backend puts the state back under ``"shared"`` when it loads the record."""

UNCHANGED = "unchanged"
"""What ``load_checkpoint(run_id, unless_rev=rev)`` returns when the stored record is still
the one saved with revision ``rev``."""

TraceRow = tuple[int, int, str, "str | None", "float | None", "float | None"]
"""(position in the trace, step, node id, action, started_at, duration_ms), as the runtime's
fast path hands them over."""


def has_trace_rows(state: Any) -> bool:
    """True for a run record saved through ``save_checkpoint`` (its trace is kept in rows)."""
    return isinstance(state, dict) and RECORD_MARKER in state and "trace" not in state and TRACE_ROWS_KEY in state


def merge_trace(state: Any, rows: Sequence[Sequence[Any]]) -> tuple[Any, int]:
    """A record saved without its trace, with ``rows`` (``[seq, step, node, action, ...]``) put back.

    Returns the state and how many trace entries it keeps as rows (0 for a plain state).
    """
    if not has_trace_rows(state):
        return state, 0
    count = state.pop(TRACE_ROWS_KEY)
    state["trace"] = [list(row[1:]) for row in sorted(rows) if row[0] < count]
    return state, count


def assemble_shared(rows: Iterable[Sequence[Any]]) -> tuple[dict[str, Any], list[tuple[str, int, int]]]:
    """The shared state kept in rows ``(key, part, position, text)``, ordered by position then
    part, and each key's ``(key, position, parts)``.

    Part 0 of a key is its whole JSON value as last written; parts 1, 2, ... are the items
    appended to that list since, each part a JSON array of the items one checkpoint added.
    """
    shared: dict[str, Any] = {}
    keys: list[tuple[str, int, int]] = []
    loads = json.loads
    key: Any = None
    pos = 0
    texts: list[str] = []

    def flush() -> None:
        if len(texts) == 1:
            shared[key] = loads(texts[0])
        else:
            items = [t.strip()[1:-1].strip() for t in texts]
            shared[key] = loads("[" + ",".join(t for t in items if t) + "]")
        keys.append((key, pos, len(texts)))

    for row_key, part, row_pos, text in rows:
        if part == 0:
            if key is not None:
                flush()
            key, pos, texts = row_key, row_pos, [text]
        elif row_key == key:
            texts.append(text)
    if key is not None:
        flush()
    return shared, keys


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (in code point order,
    which is UTF-8 byte order), or ``None`` when there is none (an empty prefix)."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last == 0xD800:
            last = 0xE000  # surrogates are no characters; the order goes on after them
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


@runtime_checkable
class Persistence(Protocol):
    """Where runs live between steps, turns and processes.

    Implement these five methods and every durable feature works: pause / resume,
    :class:`~pocketmesh.FlowStepper`, crash recovery and the A2A server. The built-in backends
    add ``list_runs_with_prefix(prefix)``, which the A2A server uses to list one owner's
    tasks without reading anyone else's.
    """

    async def save_run(self, run_id: str, state: Any, params: Params) -> None:
        """Create or replace the run's state."""

    async def load_run(self, run_id: str) -> Any | None:
        """The run's last saved state, or ``None``."""

    async def save_step(self, run_id: str, step_id: str, node_name: str, result: Any) -> None:
        """Record one step of the run."""

    async def list_runs(self) -> list[str]:
        """Every run id, oldest first."""

    async def delete_run(self, run_id: str) -> None:
        """Forget the run and its steps (no error if it is unknown)."""
