"""Reading runs back for people: the ``pocketmesh runs`` and ``pocketmesh runs show`` views.

Only the five-method persistence protocol is used (``list_runs`` and ``load_run``), so every
backend can be inspected the same way. Objects a store keeps beside runs (the A2A server's
task records, say) are not run records and are left out.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import PersistenceError, RunNotFoundError
from .persistence.base import Persistence
from .runs import RunRecord, load_run_record

STATUSES = ("running", "input-required", "completed", "failed", "canceled")


@dataclass(frozen=True)
class RunSummary:
    """One line of ``pocketmesh runs``."""

    run_id: str
    flow: str | None
    status: str
    steps: int
    updated_at: float | None


async def list_run_summaries(persistence: Persistence, status: str | None = None) -> list[RunSummary]:
    """Every run in ``persistence`` (oldest first), or those with ``status``."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; use one of {', '.join(STATUSES)}.")
    summaries = []
    for run_id in await persistence.list_runs():
        try:
            record = await load_run_record(persistence, run_id)
        except PersistenceError:
            continue  # not a run record
        if record is None or (status is not None and record.status != status):
            continue
        summaries.append(RunSummary(run_id, record.flow, record.status, record.steps, record.updated_at))
    return summaries


async def load_for_show(persistence: Persistence, run_id: str) -> RunRecord:
    """The record ``pocketmesh runs show`` prints; an unknown id raises :class:`RunNotFoundError`."""
    record = await load_run_record(persistence, run_id)
    if record is None:
        raise RunNotFoundError(run_id)
    return record


def format_time(seconds: float | None) -> str:
    """Seconds since the epoch as local ``YYYY-MM-DD HH:MM:SS.mmm`` (``-`` when unknown)."""
    if seconds is None:
        return "-"
    return datetime.datetime.fromtimestamp(seconds).isoformat(sep=" ", timespec="milliseconds")


def render_table(summaries: Sequence[RunSummary]) -> str:
    """The runs as an aligned table, one per line under a header."""
    head = ("RUN ID", "FLOW", "STATUS", "STEPS", "UPDATED")
    rows = [(s.run_id, s.flow or "-", s.status, str(s.steps), format_time(s.updated_at)) for s in summaries]
    widths = [max(len(cell) for cell in column) for column in zip(head, *rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (head, *rows))


def render_run(record: RunRecord) -> str:
    """A run's status, its trace with each step's start and duration, and its shared state."""
    lines = [
        f"run      {record.run_id}",
        f"flow     {record.flow or '-'}",
        f"status   {record.status}" + (f" (action {record.action!r})" if record.action else ""),
        f"steps    {record.steps}",
        f"updated  {format_time(record.updated_at)}",
    ]
    if record.error:
        error_id = f" (error id {record.error['id']})" if record.error.get("id") else ""
        lines.append(f"error    {record.error.get('type')}: {record.error.get('message')}{error_id}")
    if record.position and not record.finished:
        lines.append(f"next     {' / '.join(str(frame.get('node')) for frame in record.position)}")
    lines.append("")
    lines.append("trace")
    if not record.trace:
        lines.append("  (no steps yet)")
    width = max((len(step.node) for step in record.trace), default=0)
    for step in record.trace:
        took = "-" if step.duration_ms is None else f"{step.duration_ms:.3f} ms"
        action = "(failed)" if step.action is None else repr(step.action)
        lines.append(
            f"  {step.step:>4}  {step.node.ljust(width)}  -> {action:<16}  {took:>12}  "
            f"started {format_time(step.started_at)}"
        )
    lines.append("")
    lines.append("shared")
    lines.append(json.dumps(record.shared, indent=2, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines)
