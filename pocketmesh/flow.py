"""Flows: graphs of nodes wired by actions, run to the end, paused, resumed, nested."""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any, Mapping

from .context import OutOfBudget, Paused, RunContext
from .diagram import to_mermaid
from .current import current_run
from .errors import FlowNotExecutableError, PersistenceError, RunFinishedError, RunNotFoundError
from .log import log_run_failed
from .node import BaseNode, wiring_generation
from .observers import has_observers, notify
from .persistence.base import Persistence
from .results import RunResult
from .runs import RunRecord, load_run_record, save_run_record, untrack
from .types import INPUT_REQUIRED, Action, Hook, Params, SharedState


class Flow(BaseNode):
    """A graph of nodes, starting at ``start_node``; itself a node, so flows nest.

    Used as a node, a flow's action is the last action of its inner run, unless its own
    ``finalize`` returns another.
    """

    is_flow = True
    on_status_update: Hook | None = None
    on_artifact: Hook | None = None

    def __init__(self, start_node: BaseNode, *, max_steps: int = 1000, name: str | None = None) -> None:
        super().__init__(name=name)
        if not isinstance(start_node, BaseNode):
            raise TypeError(
                f"Flow needs a start node (a BaseNode or Flow), got {start_node!r} "
                f"({type(start_node).__name__})."
            )
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}.")
        self.start_node = start_node
        self.max_steps = max_steps
        self._ids: tuple[int, dict[BaseNode, str], dict[str, BaseNode]] | None = None

    async def execute(self, prep_result: Any, shared: SharedState, params: Params, attempt: int) -> Any:
        """A flow is not executed: it runs its nodes. Calling this raises, saying how to run it."""
        raise FlowNotExecutableError(self.name)

    async def finalize(
        self, shared: SharedState, prep_result: Any, exec_result: Any, params: Params
    ) -> Action | None:
        """By default a flow returns the last action of its inner run."""
        return exec_result  # type: ignore[no-any-return]

    async def _run_graph(
        self, ctx: RunContext, defaults: Params, position: list[dict[str, Any]] | None, prep: Any
    ) -> tuple[Any, Any]:
        """Between ``prepare`` and ``finalize``: run the graph; returns the prep result as
        ``finalize`` sees it and the exec result (here the inner run's last action)."""
        return prep, await ctx.loop(self, defaults, position, prep)

    def to_mermaid(self, *, direction: str = "TD") -> str:
        """This flow as a Mermaid ``flowchart``: one arrow per wired edge, labelled with its
        action; sub-flows (and BatchFlows) as subgraphs; nodes labelled with their trace ids."""
        return to_mermaid(self, direction=direction)

    # -- node ids ----------------------------------------------------------------------------

    def node_ids(self) -> tuple[dict[BaseNode, str], dict[str, BaseNode]]:
        """Each reachable node's id (its name, ``#2``-suffixed where names repeat) and back."""
        generation = wiring_generation()
        cached = self._ids
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2]
        ids: dict[BaseNode, str] = {}
        by_id: dict[str, BaseNode] = {}
        queue = deque([self.start_node])
        while queue:
            node = queue.popleft()
            if node in ids:
                continue
            node_id, n = node.name, 1
            while node_id in by_id:
                n += 1
                node_id = f"{node.name}#{n}"
            ids[node] = node_id
            by_id[node_id] = node
            queue.extend(node.successors.values())
        self._ids = (generation, ids, by_id)
        return ids, by_id

    def edges(self) -> list[tuple[str, Action, str]]:
        """Every wired edge as ``(node id, action, successor id)``, sub-flows not expanded."""
        ids, _ = self.node_ids()
        return [(ids[n], a, ids[s]) for n in ids for a, s in n.successors.items()]

    # -- running -----------------------------------------------------------------------------

    async def run(
        self,
        shared: SharedState | None = None,
        params: Params | None = None,
        *,
        run_id: str | None = None,
        persistence: Persistence | None = None,
        on_status_update: Hook | None = None,
        on_artifact: Hook | None = None,
    ) -> RunResult:
        """Run to the end or to a pause; with ``persistence`` every step is saved, and a
        ``run_id`` that is paused or was interrupted continues where it stopped."""
        ctx = await self._start(shared, params, run_id, persistence, on_status_update, on_artifact)
        return await _finish(ctx, raise_errors=False)

    async def run_lifecycle(self, shared: SharedState, params: Params | None = None) -> Action:
        """Run to the end mutating ``shared``; returns the final action; failures raise."""
        parent = current_run()
        ctx = await self._start(
            shared,
            params,
            None,
            None,
            parent.on_status_update if parent and self.on_status_update is None else None,
            parent.on_artifact if parent and self.on_artifact is None else None,
        )
        result = await _finish(ctx, raise_errors=True)
        return result.action or INPUT_REQUIRED

    async def resume(
        self,
        run_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        persistence: Persistence,
        params: Params | None = None,
        on_status_update: Hook | None = None,
        on_artifact: Hook | None = None,
    ) -> RunResult:
        """Continue the paused or interrupted run ``run_id`` with ``values`` merged into its
        persisted state (``await flow.resume(run_id, {"input": "Ada"}, persistence=store)``).

        Keys in ``values`` replace the same keys of the saved state; the others are kept.
        """
        if values is not None and not isinstance(values, Mapping):
            raise TypeError(
                f"resume() merges a dict of new values into the run's state, got {values!r:.80} "
                f"({type(values).__name__}); e.g. flow.resume(run_id, {{'input': 'yes'}}, persistence=store)."
            )
        record = await load_run_record(persistence, run_id)
        if record is None:
            raise RunNotFoundError(run_id)
        return await run_record(
            self,
            record,
            persistence,
            shared={**record.shared, **(values or {})},
            params=params,
            on_status_update=on_status_update,
            on_artifact=on_artifact,
        )

    async def _start(
        self,
        shared: SharedState | None,
        params: Params | None,
        run_id: str | None,
        persistence: Persistence | None,
        on_status_update: Hook | None,
        on_artifact: Hook | None,
        budget: int | None = None,
    ) -> RunContext:
        record = await open_record(self, shared, params, run_id, persistence)
        return RunContext(
            self,
            record,
            persistence=persistence,
            on_status_update=on_status_update or self.on_status_update,
            on_artifact=on_artifact or self.on_artifact,
            budget=budget,
        )

    def __repr__(self) -> str:
        return f"<Flow {self.name!r} start={self.start_node.name!r}>"


async def run_record(
    flow: Flow,
    record: RunRecord,
    persistence: Persistence,
    *,
    on_status_update: Hook | None = None,
    on_artifact: Hook | None = None,
    shared: SharedState | None = None,
    params: Params | None = None,
) -> RunResult:
    """Run ``flow`` on a record the caller has already loaded or made (a new run, or one to
    continue with ``record.shared`` as its state, or ``shared`` if given): ``flow.run`` without
    the load."""
    continue_record(record, shared, params)
    ctx = RunContext(
        flow,
        record,
        persistence=persistence,
        on_status_update=on_status_update or flow.on_status_update,
        on_artifact=on_artifact or flow.on_artifact,
    )
    return await _finish(ctx, raise_errors=False)


async def open_record(
    flow: Flow,
    shared: SharedState | None,
    params: Mapping[str, Any] | None,
    run_id: str | None,
    persistence: Persistence | None,
) -> RunRecord:
    """The record a run starts from: a persisted one to continue, or a new one."""
    if shared is not None and not isinstance(shared, dict):
        raise TypeError(f"shared must be a dict (or None), got {type(shared).__name__}: {shared!r:.80}.")
    run_id = run_id or uuid.uuid4().hex
    record = None if persistence is None else await load_run_record(persistence, run_id)
    if record is None:
        return RunRecord(
            run_id=run_id,
            shared={} if shared is None else shared,
            params=dict(params or {}),
            flow=flow.name,
        )
    return continue_record(record, shared, params)


def continue_record(
    record: RunRecord, shared: SharedState | None, params: Mapping[str, Any] | None
) -> RunRecord:
    """Prepare a paused or interrupted record to run on (``shared`` replaces its state)."""
    if record.finished:
        raise RunFinishedError(record.run_id, record.status)
    if record.status == INPUT_REQUIRED:
        record.since_input = 0
    if shared is not None:
        record.shared = shared
    if params is not None:
        record.params = dict(params)
    record.error = None
    return record


async def _finish(ctx: RunContext, *, raise_errors: bool) -> RunResult:
    """Drive the run and turn how it ended into a :class:`RunResult` (and a saved status)."""
    record = ctx.record
    error: BaseException | None = None
    cls = ctx.flow.__class__
    ctx.end_saves_last_step = cls.finalize is Flow.finalize and cls._run_graph is Flow._run_graph
    try:
        action: Action | None = await ctx.drive()
        status = "completed"
    except Paused:
        action, status = INPUT_REQUIRED, "input-required"
    except OutOfBudget:
        action, status = None, "running"
    except PersistenceError:
        untrack(record)
        raise
    except Exception as exc:
        action, status, error = None, "failed", exc
        error_id = log_run_failed(ctx.run_id, ctx.failed_at.get(id(exc)), exc)
        record.error = {"type": type(exc).__name__, "message": str(exc), "id": error_id}
    record.action = action
    if status in ("completed", "failed"):
        record.status = status
        record.position = []
        if ctx.persistence is not None:
            await save_run_record(ctx.persistence, record, ctx.last_step.step_row() if ctx.last_step_unsaved else None)  # type: ignore[union-attr]
    result = RunResult(
        run_id=record.run_id,
        status=status,  # type: ignore[arg-type]
        action=action,
        shared=untrack(record),
        trace=record.trace,
        error=error,
        error_id=None if record.error is None else record.error.get("id"),
    )
    if has_observers():
        notify(ctx.flow, result)
    if error is not None and raise_errors:
        raise error
    return result
