"""What a run reports: its result, its trace, status updates and stepper steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any, Literal

from .types import Action, SharedState

RunStatus = Literal["completed", "input-required", "failed", "canceled"]
StatusState = Literal["working", "completed", "failed", "paused"]


class TraceStep:
    """One node execution: its step number, its node id, the action it returned, and when.

    A sub-flow appears after its inner steps (ids ``Sub/Inner``), with the action it returned.
    ``started_at`` (seconds since the epoch) and ``duration_ms`` time the node's lifecycle;
    they are ``None`` on steps saved before steps were timed.

    A step's value is the tuple ``(step, node, action)``: it unpacks, indexes, compares and
    hashes as that tuple (``step == (1, "Ask", "default")``), and the timings are not part of
    it, so the traces of two runs that took the same path are equal.
    """

    __slots__ = ("step", "node", "action", "started_at", "duration_ms")
    _fields = ("step", "node", "action")

    step: int
    node: str
    action: Action | None
    started_at: float | None
    duration_ms: float | None

    def __init__(
        self,
        step: int,
        node: str,
        action: Action | None,
        started_at: float | None = None,
        duration_ms: float | None = None,
    ) -> None:
        self.step = step
        self.node = node
        self.action = action
        self.started_at = started_at
        self.duration_ms = duration_ms

    def __iter__(self) -> Iterator[Any]:
        return iter((self.step, self.node, self.action))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: Any) -> Any:
        return (self.step, self.node, self.action)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TraceStep):
            return self.step == other.step and self.node == other.node and self.action == other.action
        if isinstance(other, tuple):
            return (self.step, self.node, self.action) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.step, self.node, self.action))

    def __repr__(self) -> str:
        return f"TraceStep(step={self.step!r}, node={self.node!r}, action={self.action!r})"

    def _asdict(self) -> dict[str, Any]:
        return {"step": self.step, "node": self.node, "action": self.action}

    def _replace(self, **changes: Any) -> TraceStep:
        fields = {name: getattr(self, name) for name in self.__slots__}
        return TraceStep(**{**fields, **changes})

    def to_row(self) -> list[Any]:
        """The step as stored in a run record: ``[step, node, action, started_at, duration_ms]``."""
        return [self.step, self.node, self.action, self.started_at, self.duration_ms]

    def step_row(self) -> tuple[str, str, dict[str, Any]]:
        """The step as a backend's step row stores it: ``(step id, node, {"action": ...})``."""
        return (str(self.step), self.node, {"action": self.action})


@dataclass
class RunResult:
    """How a run ended (or paused)."""

    run_id: str
    status: RunStatus
    action: Action | None
    shared: SharedState
    trace: list[TraceStep] = field(default_factory=list)
    error: BaseException | None = None
    error_id: str | None = None
    """For a failed run: the id its failure was logged under (with the traceback)."""

    @property
    def paused(self) -> bool:
        """True when the run waits for input (status ``input-required``)."""
        return self.status == "input-required"


@dataclass(slots=True)
class StatusUpdate:
    """A node's progress, delivered to ``on_status_update`` hooks.

    A batch node sends one ``working`` update per item as the item starts, and a BatchFlow one
    per param set; ``item`` is then the item's index (``None`` on node updates) and ``message``
    names the item.
    """

    node: str
    state: StatusState
    message: str
    step: int
    shared: SharedState
    item: int | None = None



@dataclass
class StepResult:
    """What one :meth:`FlowStepper.step` call did."""

    node: str | None
    action: Action | None
    done: bool
    paused: bool
    status: str = "running"
