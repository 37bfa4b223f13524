"""BatchFlow: a flow whose graph runs once per param set, in order or in parallel, durably.

``prepare`` returns an iterable of param dicts; the flow's graph runs once per dict (a *pass*),
with the dict's params over every other (the flow's own, the nodes' own, the run's). The
flow's ``finalize`` receives the list of param sets and the list of each pass's last action,
in set order; it returns ``"default"`` unless overridden.

Each pass runs in a :class:`Lane`: a context with its own frames that shares the run's record,
hooks and step budget. The batch's frame in the run's position records, besides the param
sets, which sets finished (``done``: set index -> last action) and, for each set in progress,
the frames of its pass (``lanes``). So a run interrupted inside a batch (a crash between
steps, a pause, a :class:`~pocketmesh.FlowStepper` step) continues every unfinished pass at
its saved node, starts the sets not begun yet, and never runs a finished set again.

In parallel mode several passes are in progress at once; a checkpoint saves them all, so on
resume each continues from its own last saved node (a pass with no saved node starts from
the beginning). A checkpoint taken while another pass is inside a node saves that pass before
the node: after a crash that node runs again, so parallel passes should write their results
in ``finalize`` (or idempotently).

A pass that returns ``"input-required"`` pauses the run: no new set starts, the passes
already running go on until they end or pause themselves, then the run pauses. Resuming
continues every paused pass (each at its own resume point, with the state given to the
resume), then the remaining sets. Passes do not count against the enclosing flows' loop guard:
each pass is bounded by the BatchFlow's own ``max_steps``, and the batch counts as one step.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from .context import Frame, OutOfBudget, Paused, RunContext
from .errors import BatchItemsError
from .flow import Flow
from .types import DEFAULT_ACTION, INPUT_REQUIRED, Action, Params, SharedState

__all__ = ["BatchFlow", "Lane"]


class BatchFlow(Flow):
    """PocketFlow's batch flow: ``prepare`` returns param dicts, and the flow's graph runs once
    per dict with those params over the flow's own; ``set_options(parallel=True,
    max_concurrency=N)`` runs the passes concurrently, at most N at once."""

    is_batch_flow = True

    async def prepare(self, shared: SharedState, params: Params) -> Any:
        """Return the param dicts, one per pass (default: none)."""
        return []

    async def finalize(
        self, shared: SharedState, prep_result: Any, exec_result: Any, params: Params
    ) -> Action | None:
        """``prep_result`` is the list of param sets, ``exec_result`` each pass's last action."""
        return None

    async def _run_graph(
        self, ctx: RunContext, defaults: Params, position: list[dict[str, Any]] | None, prep: Any
    ) -> tuple[Any, Any]:
        saved = position[0].get("batch") if position else None
        sets = await _param_sets(self, prep) if saved is None else prep
        frame = BatchFrame(sets, saved, ctx.record.since_input)
        name = "/".join(ctx.prefix) or self.name
        ctx.frames.append(frame)
        try:
            await self._run_passes(ctx, frame, defaults, name)
        except (Paused, OutOfBudget):
            raise  # the frame stays: it is where the batch continues
        except BaseException:
            ctx.frames.pop()
            self._count_as_one_step(ctx, frame)
            raise
        ctx.frames.pop()
        self._count_as_one_step(ctx, frame)
        return sets, [frame.done[i] for i in range(len(sets))]

    @staticmethod
    def _count_as_one_step(ctx: RunContext, frame: BatchFrame) -> None:
        # The passes were bounded one by one; to the enclosing levels the batch is one step.
        ctx.record.since_input = frame.since + 1
        ctx.leaves += 1

    async def _run_passes(self, ctx: RunContext, frame: BatchFrame, defaults: Params, name: str) -> None:
        sets = frame.sets
        pending = [i for i in range(len(sets)) if i not in frame.done]
        limit = (self.max_concurrency or len(sets) or 1) if self.parallel else 1
        running: dict[asyncio.Task[Action | None], int] = {}
        stop: type[Exception] | None = None
        if limit > 1 and ctx.root.save_lock is None:
            ctx.root.save_lock = asyncio.Lock()
        try:
            while pending or running:
                while pending and len(running) < limit and stop is None:
                    if ctx.budget == 0:
                        stop = OutOfBudget
                        break
                    index = pending.pop(0)
                    running[asyncio.ensure_future(self._pass(ctx, frame, index, defaults, name))] = index
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                failure: BaseException | None = None
                completed = False
                for task in sorted(finished, key=running.__getitem__):
                    del running[task]
                    error = task.exception()
                    if error is None:
                        completed = True
                    elif isinstance(error, Paused):
                        stop = Paused
                    elif isinstance(error, OutOfBudget):
                        stop = stop or OutOfBudget
                    else:
                        failure = failure or error
                if failure is not None:
                    raise failure
                if completed and ctx.persistence is not None:
                    await ctx.checkpoint("running")
        except BaseException:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        if stop is Paused:
            # Resuming resets the run's step count; the batch's share of it starts over too.
            frame.since = 0
            await ctx.checkpoint(INPUT_REQUIRED)
            raise Paused(name)
        if stop is OutOfBudget:
            ctx.record.position = ctx.position()
            raise OutOfBudget

    async def _pass(self, ctx: RunContext, frame: BatchFrame, index: int, defaults: Params, name: str) -> Action | None:
        """One pass of the graph, for param set ``index``, fresh or continued."""
        saved = frame.saved_lanes.pop(index, None) or None
        lane = frame.lanes[index] = Lane(ctx, frame.sets[index])
        if saved is None and ctx.on_status_update is not None:
            await ctx.item_started(index, len(frame.sets), frame.sets[index], node=name)
        last = await lane.loop(self, defaults, saved, None)
        # Recorded before anything else can run: a checkpoint from another pass must never
        # see this set neither finished nor in progress.
        frame.done[index] = last or DEFAULT_ACTION
        del frame.lanes[index]
        return last

    def __repr__(self) -> str:
        return f"<BatchFlow {self.name!r} start={self.start_node.name!r}>"


class BatchFrame(Frame):
    """The batch level of a run's position: the param sets, the finished sets and the passes
    in progress (each dumped from its lane's frames)."""

    __slots__ = ("sets", "done", "lanes", "saved_lanes", "since")

    def __init__(self, sets: list[Params], saved: Mapping[str, Any] | None, since: int) -> None:
        super().__init__(None, None, sets)
        self.sets = sets
        self.lanes: dict[int, Lane] = {}
        if saved is None:
            self.done: dict[int, Action] = {}
            self.saved_lanes: dict[int, list[dict[str, Any]]] = {}
            self.since = since
        else:
            self.done = {int(i): action for i, action in saved.get("done", {}).items()}
            self.saved_lanes = {int(i): frames for i, frames in saved.get("lanes", {}).items()}
            self.since = int(saved.get("since", since))

    def dump(self) -> dict[str, Any]:
        lanes = {str(i): frames for i, frames in self.saved_lanes.items()}
        lanes.update((str(i), [f.dump() for f in lane.frames]) for i, lane in sorted(self.lanes.items()))
        batch = {"done": {str(i): a for i, a in sorted(self.done.items())}, "lanes": lanes, "since": self.since}
        return {"node": None, "last": None, "prep": self.sets, "batch": batch}


class Lane(RunContext):
    """Where one batch pass runs: its own frames and prefix, the set's params on top, and
    everything else (record, hooks, step budget, checkpoints) shared with the run."""

    top_frames = 0
    run_limit = sys.maxsize  # each pass is bounded by its flow's max_steps instead

    def __init__(self, parent: RunContext, set_params: Params) -> None:
        # Deliberately not RunContext.__init__: a lane owns only its frames and prefix.
        self._root = parent.root
        self.flow = parent.flow
        self.record = parent.record
        self.persistence = parent.persistence
        self.on_status_update = parent.on_status_update
        self.on_artifact = parent.on_artifact
        self.frames = []
        self.prefix = list(parent.prefix)
        self.leaves = 0
        self._top = {**parent.top_params, **set_params}

    def __getattr__(self, name: str) -> Any:
        # Everything a lane does not own (failure origins, timing, spans, the save lock, the
        # event loop) is the run's: read it from the root context.
        return getattr(self.root, name)

    @property
    def root(self) -> RunContext:
        return self._root

    @property  # type: ignore[override]
    def budget(self) -> int | None:
        return self.root.budget

    @budget.setter
    def budget(self, value: int | None) -> None:
        self.root.budget = value

    @property  # type: ignore[override]
    def last_step(self) -> Any:
        return self.root.last_step

    @last_step.setter
    def last_step(self, value: Any) -> None:
        self.root.last_step = value

    @property
    def top_params(self) -> Params:
        return self._top

    async def checkpoint(self, status: str) -> None:
        # A pass that pauses saves as running: the batch decides when the run is paused.
        await self.root.checkpoint("running" if status == INPUT_REQUIRED else status)

    def emit_artifact(self, artifact: Any) -> Any:
        return self.root.emit_artifact(artifact)


async def _param_sets(flow: BatchFlow, prep: Any) -> list[Params]:
    """The param dicts ``prepare`` returned, as a list of plain dicts (checked)."""
    if prep is None:
        return []
    if isinstance(prep, AsyncIterable):
        items = [item async for item in prep]
    elif isinstance(prep, (str, bytes, Mapping)) or not isinstance(prep, Iterable):
        raise BatchItemsError(
            f"BatchFlow {flow.name!r}: prepare() must return an iterable of param dicts, got "
            f"{prep!r:.80} ({type(prep).__name__}); return e.g. [{{'file': 'a.txt'}}, {{'file': 'b.txt'}}]."
        )
    else:
        items = list(prep)
    sets: list[Params] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not all(isinstance(k, str) for k in item):
            raise BatchItemsError(
                f"BatchFlow {flow.name!r}: param set {index} is {item!r:.80} ({type(item).__name__}); "
                f"each item prepare() returns must be a dict with str keys, e.g. {{'file': 'a.txt'}}."
            )
        sets.append(dict(item))
    return sets
