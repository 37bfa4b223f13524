"""What a run reports: its result, its trace, status updates and stepper steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from .types import Action, SharedState

RunStatus = Literal["completed", "input-required", "failed", "canceled"]
StatusState = Literal["working", "completed", "failed", "paused"]


class TraceStep(NamedTuple):
    """One node execution: its step number, its node id, the action it returned.

    A sub-flow appears after its inner steps (ids ``Sub/Inner``), with the action it returned.
    """

    step: int
    node: str
    action: Action | None


@dataclass
class RunResult:
    """How a run ended (or paused)."""

    run_id: str
    status: RunStatus
    action: Action | None
    shared: SharedState
    trace: list[TraceStep] = field(default_factory=list)
    error: BaseException | None = None

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
