"""FlowStepper: run a flow one node per call, for manual orchestration and debugging."""

from __future__ import annotations

import uuid

from .errors import RunFinishedError, RunNotFoundError
from .flow import Flow, _finish, continue_record, open_record
from .context import RunContext
from .persistence.base import Persistence
from .results import StepResult
from .runs import RunRecord, load_run_record
from .types import Params, SharedState


class FlowStepper:
    """Executes one node per :meth:`step`, saving after each.

    Built with the ``run_id`` of an existing run it continues from the persisted position,
    in this process or another; ``flow.run`` and a stepper can continue each other's runs.
    """

    def __init__(
        self,
        flow: Flow,
        *,
        persistence: Persistence | None = None,
        run_id: str | None = None,
        shared: SharedState | None = None,
        params: Params | None = None,
    ) -> None:
        self.flow = flow
        self.persistence = persistence
        self.run_id = run_id or uuid.uuid4().hex
        self.shared: SharedState | None = shared
        self.params = params
        self.status = "running"
        self._record: RunRecord | None = None

    @property
    def done(self) -> bool:
        """True once the run completed or failed."""
        return self.status in ("completed", "failed", "canceled")

    async def load(self) -> SharedState:
        """Read the persisted run: afterwards :attr:`shared` is the state the next step continues
        with (add new input to it before stepping a paused run) and :attr:`status` its status."""
        if self.persistence is None:
            raise ValueError(
                f"stepper {self.run_id!r} has no persistence to load from; build it with "
                f"FlowStepper(flow, persistence=..., run_id=...)."
            )
        record = await load_run_record(self.persistence, self.run_id)
        if record is None:
            raise RunNotFoundError(self.run_id)
        self.shared, self.status = record.shared, record.status
        return record.shared

    async def step(self) -> StepResult:
        """Execute the next node; a paused run is resumed with :attr:`shared` as its state."""
        if self.persistence is None and self._record is not None:
            if self._record.finished:
                raise RunFinishedError(self.run_id, self._record.status)
            record = continue_record(self._record, self.shared, self.params)
        else:
            record = await open_record(self.flow, self.shared, self.params, self.run_id, self.persistence)
        ctx = RunContext(
            self.flow,
            record,
            persistence=self.persistence,
            on_status_update=self.flow.on_status_update,
            on_artifact=self.flow.on_artifact,
            budget=1,
        )
        start = len(record.trace)
        try:
            result = await _finish(ctx, raise_errors=True)
        finally:
            self._record = record
            self.shared = record.shared
            self.status = record.status
        # The leaf that ran is the step's first trace entry: a sub-flow it ended adds its own after.
        last = record.trace[start] if len(record.trace) > start else ctx.last_step
        return StepResult(
            node=None if last is None else last.node,
            action=None if last is None else last.action,
            done=result.status in ("completed", "failed"),
            paused=result.status == "input-required",
            status=result.status,
        )

    def __repr__(self) -> str:
        return f"<FlowStepper {self.flow.name!r} run_id={self.run_id!r} status={self.status!r}>"


