"""Where a run stands and where it goes next: frames, pauses, the successor an action picks,
and the repeating cycle the loop guard names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import PersistenceError, UnknownActionError
from .node import BaseNode
from .types import COMPLETE, ERROR, INPUT_REQUIRED, Action

if TYPE_CHECKING:
    from .flow import Flow
    from .results import TraceStep

__all__ = ["Frame", "OutOfBudget", "Paused", "node_by_id", "repeating_cycle", "route"]


class Paused(Exception):
    """Unwinds the loop when a node returns ``"input-required"`` (position already saved)."""


class OutOfBudget(Exception):
    """Unwinds the loop when a stepper's one step is done (position already saved)."""


class Frame:
    """Where one flow level stands: the node it runs next and the last action it saw."""

    __slots__ = ("node", "last", "prep", "count")

    def __init__(self, node: str | None, last: Action | None, prep: Any) -> None:
        self.node = node
        self.last = last
        self.prep = prep
        self.count = 0

    def dump(self) -> dict[str, Any]:
        return {"node": self.node, "last": self.last, "prep": self.prep}


def repeating_cycle(trace: Sequence[TraceStep], upcoming: str) -> list[str]:
    """The repeating tail of ``trace``, closed by the node about to run."""
    seq = [step.node for step in trace[-64:]] + [upcoming]
    for period in range(1, len(seq) // 2 + 1):
        if all(seq[-i] == seq[-i - period] for i in range(1, period + 1)):
            return seq[-period - 1 :]
    return seq[-2:]


def route(node: BaseNode, node_id: str, action: Action) -> BaseNode | None:
    """The successor for ``action``; ``None`` ends the flow; unwired actions are errors."""
    successors = node.successors
    nxt = successors.get(action)
    if nxt is not None or action == COMPLETE:
        return nxt
    others = [a for a in successors if a != ERROR and a != INPUT_REQUIRED]
    if not others:
        return None
    raise UnknownActionError(node_id, action, others)


def node_by_id(flow: Flow, by_id: dict[str, BaseNode], node_id: Any, run_id: str) -> BaseNode | None:
    """The node a saved position names; a node the flow no longer has is a clear error."""
    if node_id is None:
        return None
    try:
        return by_id[node_id]
    except KeyError:
        raise PersistenceError(
            f"run {run_id!r} was saved at node {node_id!r}, which flow {flow.name!r} no longer "
            f"has (its nodes: {', '.join(by_id)}). Resume it with the flow that started it, "
            f"or delete the run."
        ) from None
