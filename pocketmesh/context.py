"""One run of a flow: its position, trace, hooks, and the orchestration loop.

Everything that belongs to a run lives here, never on node or flow instances, so one Flow can
serve many concurrent runs. The current run is found through a context variable, which is how
``node.emit_artifact`` reaches the right run's hook.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any, Awaitable

from .current import current as _current
from .errors import PersistenceError, StepLimitError, UnknownActionError
from .log import debug_enabled, log_handled, log_step
from .node import BaseNode
from .persistence.base import Persistence
from .routing import Frame, OutOfBudget, Paused, node_by_id, repeating_cycle, route
from .results import StatusState, StatusUpdate, TraceStep
from .runs import RunRecord, save_run_record, track
from .threads import call
from .tracing import Span, Spans, spans_for_run
from .types import DEFAULT_ACTION, ERROR, INPUT_REQUIRED, Action, Hook, Params, SharedState

if TYPE_CHECKING:
    from .flow import Flow

_new, _clock, _isawaitable = object.__new__, time.perf_counter, inspect.isawaitable

_NOT_ROUTED = (StepLimitError, PersistenceError, UnknownActionError)
"""Run-level failures: they end the run rather than taking a node's "error" edge."""


class RunContext:
    """The state of one run while it executes (a BatchFlow's passes run in lanes, contexts
    that share it all but their frames and prefix with the run: :class:`pocketmesh.batch.Lane`)."""

    top_frames = 1
    """How many of this context's frames are the run's top level, whose loop guard is the run's
    own step count (nested levels count their steps per frame)."""

    def __init__(
        self,
        flow: Flow,
        record: RunRecord,
        *,
        persistence: Persistence | None,
        on_status_update: Hook | None,
        on_artifact: Hook | None,
        budget: int | None = None,
    ) -> None:
        self.flow = flow
        self.record = record
        self.persistence = persistence
        if persistence is not None and hasattr(persistence, "save_checkpoint"):
            track(record)  # checkpoints then write only the keys the run changed
        self.on_status_update = on_status_update
        self.on_artifact = on_artifact
        self.budget = budget
        self.run_limit = flow.max_steps
        self.leaves = 0
        """Leaf nodes this context ran (its share of the steps, when batch passes run in parallel)."""
        self.save_lock: asyncio.Lock | None = None
        """Set while parallel batch passes run: their checkpoints must not interleave."""
        self.frames: list[Frame] = []
        self.prefix: list[str] = []
        self.last_step: TraceStep | None = None
        self._pending_artifacts: asyncio.Future[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failed_at: dict[int, str] = {}  # id(error) -> the node it came from
        # Steps are timed with the monotonic clock; this turns a reading into wall-clock time.
        self.epoch = time.time() - _clock()
        self.debug = debug_enabled()
        self.spans: Spans | None = None
        # Nothing runs between the last step and the end's save: that save writes the step too.
        self.end_saves_last_step = self.last_step_unsaved = False

    @property
    def root(self) -> RunContext:
        """The run's own context (a batch lane's is the run's); not an attribute: a cycle."""
        return self

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def shared(self) -> SharedState:
        return self.record.shared

    @property
    def top_params(self) -> Params:
        """Params that win over every node's own: the run's (and, in a batch pass, its set's)."""
        return self.record.params

    def position(self) -> list[dict[str, Any]]:
        """Where the run stands, as persisted: one dumped frame per flow level."""
        return [frame.dump() for frame in self.root.frames]

    # -- entry ------------------------------------------------------------------------------

    async def drive(self) -> Action | None:
        """Run (or continue) the flow from the record's position; returns the final action."""
        token = _current.set(self)
        self._loop = asyncio.get_running_loop()
        spans = self.spans = spans_for_run(self.run_id)
        span = None if spans is None else spans.run(self.flow.name)
        action: Action | None = None
        try:
            action = await self.run_flow(self.flow, self.flow.params, self.record.position or None)
            return action
        except Paused:
            action = INPUT_REQUIRED
            raise
        except Exception as error:
            if span is not None and not isinstance(error, OutOfBudget):
                span.fail(error)
            raise
        finally:
            _current.reset(token)
            if span is not None:
                span.end(action)
            await self.flush_artifacts()

    async def run_flow(
        self, flow: Flow, defaults: Params, position: list[dict[str, Any]] | None
    ) -> Action:
        """A flow as a node: prepare, the inner loop, finalize (prep kept across resumes)."""
        run_params = self.top_params
        params = {**defaults, **run_params} if run_params else defaults
        if position:
            prep = position[0].get("prep")
        else:
            prep = await call(flow.prepare, self.shared, params)
        prep, last = await flow._run_graph(self, defaults, position, prep)
        action = await call(flow.finalize, self.shared, prep, last, params)
        return DEFAULT_ACTION if action is None else action

    async def loop(
        self, flow: Flow, defaults: Params, position: list[dict[str, Any]] | None, prep: Any
    ) -> Action | None:
        """The orchestration loop: run a node, pick its successor by action, save, repeat."""
        ids, by_id = flow.node_ids()
        if position:
            head = position[0]
            node = node_by_id(flow, by_id, head.get("node"), self.run_id)
            frame, inner = Frame(head.get("node"), head.get("last"), prep), position[1:] or None
        else:
            node, frame, inner = flow.start_node, Frame(None, None, prep), None
        run_params = self.top_params
        level_params = {**defaults, **run_params} if run_params else defaults
        # A node's merged params only change with its own params: merge once per node per
        # level, not once per step (self-loops would otherwise rebuild the same dict).
        merged: dict[BaseNode, tuple[Params, Params]] = {}
        persisted = self.persistence is not None
        self.frames.append(frame)
        try:
            while node is not None:
                node_id = ids[node]
                frame.node = node_id
                if inner is None and self.budget == 0:
                    self.record.position = self.position()
                    raise OutOfBudget
                own = node.params
                if node.is_flow:
                    sub_defaults = {**defaults, **own}
                    action = await self.run_subflow(flow, node, node_id, sub_defaults, inner, frame)  # type: ignore[arg-type]
                else:
                    if not own:
                        params = level_params
                    else:
                        cached = merged.get(node)
                        if cached is None or cached[0] is not own:
                            cached = merged[node] = (own, {**defaults, **own, **run_params})
                        params = cached[1]
                    action = await self.run_leaf(flow, node, node_id, params, frame)
                inner = None
                if action == INPUT_REQUIRED:
                    frame.last, frame.node = action, ids[node.successors.get(INPUT_REQUIRED, node)]
                    await self.checkpoint("input-required")
                    raise Paused(node_id)
                wired = node.__dict__.get("_successors")
                nxt = None if wired is None else wired.get(action)
                if nxt is None:
                    nxt = route(node, node_id, action)
                frame.last, frame.node = action, (None if nxt is None else ids[nxt])
                if persisted:
                    if nxt is None and self.end_saves_last_step and len(self.frames) == 1 and self.root is self and self._pending_artifacts is None:
                        self.last_step_unsaved = True  # the end's save writes it (see _finish)
                    else:
                        await self.checkpoint("running")
                node = nxt
        except (Paused, OutOfBudget):
            # A stopped run keeps its frames: they are where it continues (and a BatchFlow
            # dumps its passes' positions from them after they stopped).
            raise
        except BaseException:
            self.frames.pop()
            raise
        self.frames.pop()
        return frame.last

    async def run_leaf(
        self, flow: Flow, node: BaseNode, node_id: str, params: Params, frame: Frame
    ) -> Action:
        """One node's lifecycle, counted against the loop guard."""
        qualified = "/".join((*self.prefix, node_id)) if self.prefix else node_id
        record = self.record
        if record.since_input >= self.run_limit:
            raise StepLimitError(self.run_limit, repeating_cycle(self.record.trace, qualified))
        if len(self.frames) > self.top_frames and frame.count >= flow.max_steps:
            raise StepLimitError(flow.max_steps, repeating_cycle(self.record.trace, qualified))
        if self.budget is not None:
            self.budget -= 1
        record.steps += 1
        record.since_input += 1
        self.leaves += 1
        frame.count += 1
        # Hook calls, their updates and the trace entry are made inline (no notify, no dataclass __init__).
        hook = self.on_status_update
        span = None if self.spans is None else self.spans.node(qualified)
        started, action = _clock(), None
        try:
            try:
                if hook is not None:
                    update = _new(StatusUpdate)
                    update.node, update.state, update.message = qualified, "working", f"{qualified} is working"
                    update.step, update.shared, update.item = record.steps, record.shared, None
                    pending = hook(update)
                    if pending is not None and _isawaitable(pending):
                        await pending
                action = await node._run_lifecycle_steps(self, record.shared, params)
                if hook is not None:
                    state: StatusState = "paused" if action == INPUT_REQUIRED else "completed"
                    update = _new(StatusUpdate)
                    update.node, update.state, update.message = qualified, state, f"{qualified} returned {action!r}"
                    update.step, update.shared, update.item = record.steps, record.shared, None
                    pending = hook(update)
                    if pending is not None and _isawaitable(pending):
                        await pending
            except Exception as error:
                action = await self.failed(node, qualified, error, started, span)
        finally:
            if span is not None:
                span.end(action)
        ended = _clock()
        step = self.last_step = _new(TraceStep)
        step.step, step.node, step.action = record.steps, qualified, action
        step.started_at, step.duration_ms = self.epoch + started, (ended - started) * 1000.0
        record.trace.append(step)
        if self.debug:
            log_step(self.run_id, qualified, action, step.duration_ms)
        return action

    async def run_subflow(
        self,
        flow: Flow,
        sub: Flow,
        node_id: str,
        defaults: Params,
        inner: list[dict[str, Any]] | None,
        frame: Frame,
    ) -> Action:
        """A sub-flow used as a node; its steps count against the enclosing level too."""
        qualified = self.qualify(node_id)
        before = self.leaves
        span = None if self.spans is None else self.spans.node(qualified)
        started, action = _clock(), None
        self.prefix.append(node_id)
        try:
            try:
                action = await self.run_flow(sub, defaults, inner)
            except Exception as error:
                self.prefix.pop()
                action = await self.failed(sub, qualified, error, started, span)
            else:
                self.prefix.pop()
        finally:
            if span is not None:
                span.end(action)
        frame.count += self.leaves - before
        self.trace(qualified, action, started)
        return action

    async def failed(self, node: BaseNode, qualified: str, error: Exception, started: float, span: Span | None) -> Action:
        """Route a node failure to its "error" successor, or re-raise it."""
        if isinstance(error, (Paused, OutOfBudget)):
            raise error
        if span is not None:
            span.fail(error)
        if isinstance(error, _NOT_ROUTED):
            raise error
        origin = self.failed_at.get(id(error))
        if origin is None:
            origin = self.failed_at[id(error)] = qualified
            if self.on_status_update is not None:
                await self.status(qualified, "failed", f"{type(error).__name__}: {error}")
        if ERROR not in node.successors:
            self.trace(qualified, None, started)
            raise error
        log_handled(self.run_id, origin, error)
        self.shared["__error"] = {"node": origin, "type": type(error).__name__, "message": str(error)}
        return ERROR

    def qualify(self, node_id: str) -> str:
        return "/".join((*self.prefix, node_id)) if self.prefix else node_id

    # -- bookkeeping ------------------------------------------------------------------------

    def trace(self, node: str, action: Action | None, started: float | None = None) -> None:
        """Append a step to the trace, timed from ``started`` (a ``perf_counter`` reading; now if not given)."""
        ended = _clock()
        started = ended if started is None else started
        self.last_step = step = TraceStep(self.record.steps, node, action, self.epoch + started, (ended - started) * 1000.0)
        self.record.trace.append(step)
        if self.debug:
            log_step(self.run_id, node, action, step.duration_ms)

    async def checkpoint(self, status: str) -> None:
        """Save where the run stands (no-op without persistence)."""
        lock = self.save_lock
        if lock is None:
            await self._save(status)
        else:
            async with lock:
                await self._save(status)

    async def _save(self, status: str) -> None:
        self.record.status = status
        self.record.position = self.position()
        if self.persistence is None:
            return
        last = self.last_step
        # Parallel batch passes may be mid-node while another saves: their keys stay touched.
        await save_run_record(self.persistence, self.record, None if last is None else last.step_row(), between_steps=self.root.save_lock is None)

    async def status(self, node: str, state: StatusState, message: str, item: int | None = None) -> None:
        if self.on_status_update is not None:
            update = StatusUpdate(node, state, message, self.record.steps, self.record.shared, item)
            pending = self.notify(update)
            if pending is not None:
                await pending

    async def item_started(self, index: int, total: int, item: Any, node: str | None = None) -> None:
        """Tell the status hook that item ``index`` of a batch starts (``node``: the running leaf)."""
        if node is None:
            node = self.qualify(self.frames[-1].node or "")
        shown = text if len(text := repr(item)) <= 80 else text[:77] + "..."
        await self.status(node, "working", f"{node}: item {index + 1} of {total}: {shown}", index)

    def notify(self, update: StatusUpdate) -> Awaitable[Any] | None:
        """Call the status hook; what is left to await for an async hook, else ``None``."""
        result = self.on_status_update(update)  # type: ignore[misc]
        if result is not None and inspect.isawaitable(result):
            return result
        return None

    def emit_artifact(self, artifact: Any) -> Any:
        """Call the artifact hook now; async hooks are chained so artifacts keep their order.

        Called from a worker thread (a synchronous node), the hook runs on the run's event loop
        and this returns once it has the artifact.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is None:
                raise
            return asyncio.run_coroutine_threadsafe(self._deliver(artifact), self._loop).result()
        hook = self.on_artifact
        done: asyncio.Future[Any] = loop.create_future()
        if hook is None:
            done.set_result(None)
            return done
        result = hook(artifact)
        if not inspect.isawaitable(result):
            done.set_result(None)
            return done
        previous = self._pending_artifacts

        async def deliver() -> None:
            if previous is not None:
                await previous
            await result

        self._pending_artifacts = asyncio.ensure_future(deliver())
        return self._pending_artifacts

    async def _deliver(self, artifact: Any) -> None:
        await self.emit_artifact(artifact)

    async def flush_artifacts(self) -> None:
        pending, self._pending_artifacts = self._pending_artifacts, None
        if pending is not None:
            await pending


__all__ = ["Frame", "OutOfBudget", "Paused", "RunContext"]
