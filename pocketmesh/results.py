"""What a run reports: its result, its trace, status updates and stepper steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .types import Action, SharedState

RunStatus = Literal["completed", "input-required", "failed", "canceled"]
StatusState = Literal["working", "completed", "failed", "paused"]


class _Step(NamedTuple):
    step: int
    node: str
    action: Action | None


class TraceStep(_Step):
    """One node execution: its step number, its node id, the action it returned, and when.

    A sub-flow appears after its inner steps (ids ``Sub/Inner``), with the action it returned.
    ``started_at`` (seconds since the epoch) and ``duration_ms`` time the node's lifecycle;
    they are ``None`` on steps saved before steps were timed. A step is the tuple
    ``(step, node, action)``: timings are not part of it, so traces of two runs that took the
    same path compare equal, and ``step == (1, "Ask", "default")`` holds.
    """

    started_at: float | None = None
    duration_ms: float | None = None

    def __new__(
        cls,
        step: int,
        node: str,
        action: Action | None,
        started_at: float | None = None,
        duration_ms: float | None = None,
    ) -> TraceStep:
        self = tuple.__new__(cls, (step, node, action))
        if started_at is not None:
            self.started_at = started_at
        if duration_ms is not None:
            self.duration_ms = duration_ms
        return self

    def _replace(self, **changes: Any) -> TraceStep:
        fields = {**self._asdict(), "started_at": self.started_at, "duration_ms": self.duration_ms}
        return TraceStep(**{**fields, **changes})

    def to_row(self) -> list[Any]:
        """The step as stored in a run record: ``[step, node, action, started_at, duration_ms]``."""
        return [self[0], self[1], self[2], self.started_at, self.duration_ms]


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
    """A node's progress, delivered to ``on_status_update`` hooks."""

    node: str
    state: StatusState
    message: str
    step: int
    shared: SharedState


@dataclass
class StepResult:
    """What one :meth:`FlowStepper.step` call did."""

    node: str | None
    action: Action | None
    done: bool
    paused: bool
    status: str = "running"
