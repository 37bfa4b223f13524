"""Running a flow the way the properties do: to the end, answering pauses with user turns."""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any

from pocketmesh import Flow, RunResult, load_run_record

__all__ = ["RUN_ID", "Outcome", "continue_run", "drive", "steps"]

RUN_ID = "pocketmesh-property-run"


@dataclass
class Outcome:
    """How one (possibly resumed) run ended, in comparable form."""

    status: str
    shared: dict[str, Any]
    trace: list[tuple[int, str, str | None]]
    error: BaseException | None = None
    error_type: str | None = None

    @classmethod
    def of(cls, result: RunResult) -> Outcome:
        """From a ``RunResult``."""
        error = result.error
        return cls(result.status, copy.deepcopy(result.shared), steps(result.trace),
                   error, None if error is None else type(error).__name__)


def steps(trace: Any) -> list[tuple[int, str, str | None]]:
    """``(step, node id, action)`` of each trace entry: what two runs of one path share (timings differ)."""
    return [(int(t[0]), str(t[1]), t[2]) for t in trace]


async def drive(
    flow: Flow, store: Any, shared: dict[str, Any] | None, users: deque[str], input_key: str, params: Any
) -> Outcome:
    """Run (or continue) to the end, answering each pause with the next user turn while any remain."""
    result = await flow.run(shared, params, run_id=RUN_ID, persistence=store)
    while result.status == "input-required" and users:
        result = await _turn(flow, store, result.shared, users, input_key)
    return Outcome.of(result)


async def _turn(flow: Flow, store: Any, shared: dict[str, Any], users: deque[str], input_key: str) -> RunResult:
    """Resume with the next user turn; a turn that never finished goes back to the queue."""
    message = users.popleft()
    try:
        return await flow.run({**shared, input_key: message}, run_id=RUN_ID, persistence=store)
    except BaseException:
        users.appendleft(message)
        raise


async def continue_run(
    flow: Flow, store: Any, initial: dict[str, Any], users: deque[str], input_key: str, params: Any
) -> Outcome:
    """Continue the persisted run the way a fresh process would."""
    record = await load_run_record(store, RUN_ID)
    if record is None:
        return await drive(flow, store, copy.deepcopy(initial), users, input_key, params)
    if record.finished or (record.status == "input-required" and not users):
        error_type = (record.error or {}).get("type")
        return Outcome(record.status, copy.deepcopy(record.shared), steps(record.trace), None, error_type)
    if record.status == "input-required":
        result = await _turn(flow, store, record.shared, users, input_key)
        while result.status == "input-required" and users:
            result = await _turn(flow, store, result.shared, users, input_key)
        return Outcome.of(result)
    return await drive(flow, store, None, users, input_key, params)
