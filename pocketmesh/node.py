"""Nodes: the prepare / execute / finalize lifecycle, wiring, retries and batches."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, TypeVar

from . import clock
from .attempts import attempt_once, log_failed_attempt
from .current import current_run
from .errors import ActionTypeError, BatchItemsError, WiringError
from .signatures import check_signatures
from .threads import call, run_sync
from .types import DEFAULT_ACTION, Action, Params, SharedState, WaitSeconds

if TYPE_CHECKING:
    from .context import RunContext

logger = logging.getLogger("pocketmesh")

N = TypeVar("N", bound="BaseNode")

_wiring_generation = 0
"""Bumped on every wiring change, so flows know when to recompute their node ids."""


def wiring_generation() -> int:
    """The current wiring generation (any ``connect`` anywhere bumps it)."""
    return _wiring_generation


_SKIP, _AWAIT, _CALL = "skip", "await", "call"
"""How the runtime invokes a lifecycle method: not at all (the no-op default), by awaiting it
(an ``async def``), or in a worker thread (a plain ``def``; see :mod:`pocketmesh.threads`)."""


class _Plan(NamedTuple):
    prepare: str
    execute: str
    finalize: str
    batch: bool
    fallback: bool


_plans: dict[type, _Plan] = {}
"""Per node class: how to run its lifecycle (methods are looked up on the class once)."""


def _how(cls: type, name: str) -> str:
    method = getattr(cls, name)
    if method is getattr(BaseNode, name):
        return _SKIP
    return _AWAIT if inspect.iscoroutinefunction(method) else _CALL


def _plan_for(cls: type) -> _Plan:
    plan = _Plan(
        _how(cls, "prepare"),
        _how(cls, "execute"),
        _how(cls, "finalize"),
        hasattr(cls, "execute_item"),
        getattr(cls, "execute_fallback") is not BaseNode.execute_fallback,
    )
    _plans[cls] = plan
    return plan


_LIFECYCLE = frozenset({"prepare", "execute", "finalize"})


def _instance_plan(node: BaseNode, plan: _Plan) -> _Plan:
    """The plan of a node whose lifecycle methods were set on the instance itself."""
    own = node.__dict__
    return plan._replace(**{name: _CALL for name in _LIFECYCLE if name in own})


class ActionKey:
    """The ``node - "action"`` half of the ``node - "action" >> successor`` sugar."""

    __slots__ = ("node", "action")

    def __init__(self, node: BaseNode, action: Action) -> None:
        self.node = node
        self.action = action

    def __rshift__(self, other: N) -> N:
        return self.node.connect_action(self.action, other)

    def __repr__(self) -> str:
        return f"ActionKey({self.node.name!r}, {self.action!r})"


class BaseNode:
    """One step of a flow: ``prepare`` reads shared state, ``execute`` does the work
    (retried), ``finalize`` writes results back and returns the next action."""

    params: Params = {}
    max_retries: int = 1
    wait_seconds: WaitSeconds = 0
    parallel: bool = False
    max_concurrency: int | None = None
    timeout: float | None = None
    is_flow = False

    name = "BaseNode"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Here rather than in __init__, which subclasses may override without calling it.
        check_signatures(cls)
        return super().__new__(cls)

    def __init__(self, *, name: str | None = None) -> None:
        if name is not None:
            self.name = name

    # -- lifecycle (override these) ---------------------------------------------------------

    async def prepare(self, shared: SharedState, params: Params) -> Any:
        """Read what ``execute`` needs from shared state."""
        return None

    async def execute(self, prep_result: Any, shared: SharedState, params: Params, attempt: int) -> Any:
        """Do the work; retried up to ``max_retries`` attempts in all."""
        return None

    async def finalize(
        self, shared: SharedState, prep_result: Any, exec_result: Any, params: Params
    ) -> Action | None:
        """Write results into shared state and return the next action (``None``: "default")."""
        return None

    async def execute_fallback(
        self, prep_result: Any, error: BaseException, shared: SharedState, params: Params, attempt: int
    ) -> Any:
        """Called once retries are spent; its return value replaces the failed result."""
        raise error

    async def execute_item_fallback(
        self, item: Any, error: BaseException, shared: SharedState, params: Params, attempt: int
    ) -> Any:
        """Batch form of :meth:`execute_fallback`, per item."""
        raise error

    # -- configuration ---------------------------------------------------------------------

    def set_params(self, params: Mapping[str, Any]) -> BaseNode:
        """Set this node's default params (a flow's defaults and run params merge around them)."""
        self.params = dict(params)
        return self

    def set_options(
        self,
        max_retries: int = 1,
        wait_seconds: WaitSeconds = 0,
        parallel: bool = False,
        max_concurrency: int | None = None,
        timeout: float | None = None,
    ) -> BaseNode:
        """Set retries (total attempts), the wait between them, batch concurrency, and the
        ``timeout`` in seconds of each execution attempt (an overrun raises ``TimeoutError``,
        a failure like any other: retried, then the fallback and the ``"error"`` edge)."""
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 1:
            raise ValueError(
                f"max_retries must be an int >= 1 (the total number of attempts), "
                f"got {max_retries!r}; use max_retries=1 for no retry."
            )
        if not callable(wait_seconds) and (
            not isinstance(wait_seconds, (int, float)) or wait_seconds < 0
        ):
            raise ValueError(
                f"wait_seconds must be a number >= 0 or a callable attempt -> seconds, "
                f"got {wait_seconds!r}."
            )
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be None or an int >= 1, got {max_concurrency!r}.")
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout < float("inf")
        ):
            raise ValueError(
                f"timeout must be None or a number of seconds > 0, got {timeout!r}; e.g. timeout=30."
            )
        self.timeout = timeout
        self.max_retries = max_retries
        self.wait_seconds = wait_seconds
        self.parallel = bool(parallel)
        self.max_concurrency = max_concurrency
        return self

    # -- wiring ------------------------------------------------------------------------------

    @property
    def successors(self) -> dict[Action, BaseNode]:
        """The wired actions of this node, in wiring order."""
        try:
            return self.__dict__["_successors"]  # type: ignore[no-any-return]
        except KeyError:
            succ: dict[Action, BaseNode] = {}
            self.__dict__["_successors"] = succ
            return succ

    def connect_action(self, action: Action, node: N) -> N:
        """Wire ``action`` to ``node``; returns ``node`` so chains read left to right."""
        global _wiring_generation
        if not isinstance(action, str):
            raise ActionTypeError(
                f"action must be a str, got {action!r} ({type(action).__name__}) "
                f"while wiring {self.name!r}; use e.g. node.connect_action('next', other)."
            )
        if not action:
            raise WiringError(
                f"action must be a non-empty string while wiring {self.name!r}; "
                f"use connect_to(other) for the 'default' action."
            )
        if not isinstance(node, BaseNode):
            raise TypeError(
                f"{self.name!r} can only be wired to a node (a BaseNode or Flow), "
                f"got {node!r} ({type(node).__name__})."
            )
        succ = self.successors
        if action in succ:
            raise WiringError(
                f"action {action!r} of node {self.name!r} is already wired to "
                f"{succ[action].name!r}; wire each action once (use another action name "
                f"to branch to {node.name!r})."
            )
        succ[action] = node
        _wiring_generation += 1
        return node

    def connect_to(self, node: N) -> N:
        """Wire the ``"default"`` action to ``node``."""
        return self.connect_action(DEFAULT_ACTION, node)

    def __rshift__(self, other: N) -> N:
        return self.connect_to(other)

    def __sub__(self, action: Action) -> ActionKey:
        if not isinstance(action, str):
            raise ActionTypeError(
                f"node - action needs a str action, got {action!r} ({type(action).__name__})."
            )
        return ActionKey(self, action)

    # -- artifacts ---------------------------------------------------------------------------

    def emit_artifact(self, artifact: Any) -> Any:
        """Deliver ``artifact`` to the current run's ``on_artifact`` hook.

        Works with or without ``await``; artifacts of one run are delivered in order. From a
        synchronous method (which runs in a worker thread) it returns once the hook has it.
        """
        ctx = current_run()
        if ctx is None:
            raise RuntimeError(
                f"{self.name}.emit_artifact() was called outside a running flow; "
                f"call it from prepare / execute / finalize while the flow runs."
            )
        return ctx.emit_artifact(artifact)

    # -- running (used by Flow) -------------------------------------------------------------

    @property
    def is_batch(self) -> bool:
        """True when the node defines ``execute_item``: a batch node."""
        return hasattr(self, "execute_item")

    async def _run_lifecycle_steps(self, ctx: RunContext, shared: SharedState, params: Params) -> Action:
        # This runs once per step: the per-class plan avoids a wrapper coroutine and an
        # awaitable check per lifecycle call, and skips the no-op defaults outright.
        cls = self.__class__
        plan = _plans.get(cls) or _plan_for(cls)
        if self.__dict__ and not _LIFECYCLE.isdisjoint(self.__dict__):
            plan = _instance_plan(self, plan)
        how = plan.prepare
        if how is _AWAIT:
            prep = await self.prepare(shared, params)
        elif how is _SKIP:
            prep = None
        else:
            prep = await run_sync(self.prepare, shared, params)
        if plan.batch:
            result: Any = await self._execute_batch(ctx, prep, shared, params)
        elif self.max_retries != 1 or plan.fallback or self.timeout is not None:
            result = await self._execute_with_retries(prep, shared, params)
        else:
            # One attempt and the default fallback (which re-raises): no retry frame needed.
            how = plan.execute
            if how is _AWAIT:
                result = await self.execute(prep, shared, params, 0)
            elif how is _SKIP:
                result = None
            else:
                result = await run_sync(self.execute, prep, shared, params, 0)
        how = plan.finalize
        if how is _AWAIT:
            action = await self.finalize(shared, prep, result, params)
        elif how is _SKIP:
            return DEFAULT_ACTION
        else:
            action = await run_sync(self.finalize, shared, prep, result, params)
        if action is None:
            return DEFAULT_ACTION
        if action.__class__ is not str and not isinstance(action, str) or not action:
            raise ActionTypeError(
                f"{self.name}.finalize() returned {action!r} ({type(action).__name__}); "
                f"return an action name (a non-empty str) or None for 'default'."
            )
        return action  # type: ignore[no-any-return]

    async def _execute_with_retries(self, prep: Any, shared: SharedState, params: Params) -> Any:
        attempts = self.max_retries
        for attempt in range(attempts):
            try:
                return await attempt_once(self, self.execute, (prep, shared, params, attempt))
            except Exception as error:
                if attempt + 1 >= attempts:
                    log_failed_attempt(self, attempt, error, None)
                    return await call(self.execute_fallback, prep, error, shared, params, attempt)
                await self._wait_before_retry(attempt, error)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _execute_item_with_retries(self, item: Any, shared: SharedState, params: Params) -> Any:
        attempts = self.max_retries
        run_item: Callable[..., Any] = self.execute_item  # type: ignore[attr-defined]
        for attempt in range(attempts):
            try:
                return await attempt_once(self, run_item, (item, shared, params, attempt))
            except Exception as error:
                if attempt + 1 >= attempts:
                    log_failed_attempt(self, attempt, error, None)
                    return await call(self.execute_item_fallback, item, error, shared, params, attempt)
                await self._wait_before_retry(attempt, error)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _wait_before_retry(self, attempt: int, error: BaseException) -> None:
        wait = self.wait_seconds
        seconds = wait(attempt) if callable(wait) else wait
        log_failed_attempt(self, attempt, error, float(seconds))
        if seconds:
            await clock.sleep(float(seconds))

    async def _execute_batch(self, ctx: RunContext, prep: Any, shared: SharedState, params: Params) -> list[Any]:
        items = await self._collect_items(prep)
        # One status update per item, as it starts (the A2A layer streams them as progress).
        report = ctx.on_status_update is not None
        total = len(items)
        if not self.parallel:
            if not report:
                return [await self._execute_item_with_retries(item, shared, params) for item in items]
            results = []
            for index, item in enumerate(items):
                await ctx.item_started(index, total, item)
                results.append(await self._execute_item_with_retries(item, shared, params))
            return results
        limit = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
        node_id = ctx.qualify(ctx.frames[-1].node or self.name) if report else ""

        async def one(index: int, item: Any) -> Any:
            if limit is None:
                if report:
                    await ctx.item_started(index, total, item, node_id)
                return await self._execute_item_with_retries(item, shared, params)
            async with limit:
                if report:
                    await ctx.item_started(index, total, item, node_id)
                return await self._execute_item_with_retries(item, shared, params)

        tasks = [asyncio.ensure_future(one(index, item)) for index, item in enumerate(items)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # The first failure fails the node: stop the other items rather than leak them.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _collect_items(self, prep: Any) -> list[Any]:
        if isinstance(prep, AsyncIterable):
            return [item async for item in prep]
        if isinstance(prep, (str, bytes, Mapping)) or not isinstance(prep, Iterable):
            raise BatchItemsError(
                f"batch node {self.name!r}: prepare() must return an iterable or async iterable "
                f"of items, got {prep!r:.80} ({type(prep).__name__}); return e.g. a list of items."
            )
        return list(prep)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
