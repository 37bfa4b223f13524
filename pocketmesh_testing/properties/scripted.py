"""Driving a flow by a script: a mirror of the flow whose nodes take scripted actions.

:func:`scripted_flow` builds a new graph of proxies with the same node ids; each proxy runs the
user's node (prepare / execute / finalize, retries, batches) and then, when a :class:`Driver` is
active in the current context, replaces the action with the next one scripted for its node id.
The user's nodes are never modified, and the driver lives in a context variable, so concurrent
runs of the same mirror each follow their own script.
"""

from __future__ import annotations

import contextvars
import inspect
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pocketmesh import BaseNode, BatchFlow, Flow

from pocketmesh_testing.properties.wiring import ERROR, exit_actions

__all__ = ["Driver", "Interrupted", "ScriptedFailure", "driving", "scripted_flow"]

_driver: contextvars.ContextVar[Driver | None] = contextvars.ContextVar("pocketmesh_testing_driver", default=None)


class ScriptedFailure(RuntimeError):
    """Raised by a node whose scripted action is ``"error"``, so the runtime routes the failure."""


class Interrupted(BaseException):
    """Stops a run mid-step, as a crash would: nothing after the last checkpoint is saved."""


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Driver:
    """The script and probes of one run: scripted actions, steps taken, side effects, crash point."""

    def __init__(
        self,
        script: Mapping[str, Sequence[str]] | None = None,
        *,
        exhausted: str = "own",
        exits: Mapping[str, str] | None = None,
        counter: Callable[[], int] | None = None,
        crash_at: int | None = None,
        on_crash: Callable[[], None] | None = None,
        mark: Callable[[], Any] | None = None,
    ) -> None:
        if exhausted not in ("own", "exit"):
            raise ValueError(f"exhausted must be 'own' or 'exit', got {exhausted!r}.")
        self.remaining = {node: deque(actions) for node, actions in (script or {}).items()}
        self.exhausted = exhausted
        self.exits = dict(exits or {})
        self.counter = counter
        self.crash_at = crash_at
        self.on_crash = on_crash
        self.mark = mark
        self.marks: list[Any] = []
        self.taken: list[tuple[str, str]] = []
        self.forced: list[tuple[str, str, str]] = []
        """``(node id, its own action, the scripted one)`` where the script overrode the node."""
        self.entries: list[tuple[str, int]] = []

    @property
    def steps(self) -> int:
        """Leaf node executions seen so far."""
        return len(self.entries)

    def enter(self, node_id: str) -> None:
        """A leaf node starts: note it and the side-effect count before it."""
        self.entries.append((node_id, self.counter() if self.counter else 0))
        self.marks.append(self.mark() if self.mark else None)

    def effects_per_step(self) -> list[tuple[str, int]]:
        """Side effects (e.g. LLM calls) made by each leaf step, in order."""
        now = self.counter() if self.counter else 0
        marks = [count for _, count in self.entries] + [now]
        return [(node, marks[i + 1] - marks[i]) for i, (node, _) in enumerate(self.entries)]

    def check_crash(self) -> None:
        """Crash here if this is the planned step."""
        if self.crash_at is not None and self.steps == self.crash_at:
            self.crash_at = None
            if self.on_crash is not None:
                self.on_crash()
            raise Interrupted(f"interrupted during step {self.steps}")

    def choose(self, node_id: str, own: str | None) -> str | None:
        """The action ``node_id`` takes: the next scripted one, else its own (or the exit)."""
        queue = self.remaining.get(node_id)
        if queue:
            action = queue.popleft()
        elif self.exhausted == "exit" and node_id in self.exits and node_id in self.remaining:
            action = self.exits[node_id]
        else:
            return own
        self.taken.append((node_id, action))
        if action != (own or "default") and action != ERROR:
            self.forced.append((node_id, own or "default", action))
        if action == ERROR:
            raise ScriptedFailure(f"scripted failure of node {node_id!r}")
        return action


@contextmanager
def driving(driver: Driver) -> Iterator[Driver]:
    """Make ``driver`` the script of runs started in this context."""
    token = _driver.set(driver)
    try:
        yield driver
    finally:
        _driver.reset(token)


class _Proxy(BaseNode):
    """Runs the user's node, then lets the active driver pick the action."""

    def __init__(self, inner: BaseNode, node_id: str) -> None:
        super().__init__(name=inner.name)
        self.inner = inner
        self.node_id = node_id
        self.params = inner.params
        self.max_retries = inner.max_retries
        self.wait_seconds = inner.wait_seconds
        self.parallel = inner.parallel
        self.max_concurrency = inner.max_concurrency

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> Any:
        driver = _driver.get()
        if driver is not None:
            driver.enter(self.node_id)
        return await _maybe_await(self.inner.prepare(shared, params))

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
        return await _maybe_await(self.inner.execute(prep, shared, params, attempt))

    async def execute_fallback(
        self, prep: Any, error: BaseException, shared: dict[str, Any], params: dict[str, Any], attempt: int
    ) -> Any:
        return await _maybe_await(self.inner.execute_fallback(prep, error, shared, params, attempt))

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> Any:
        driver = _driver.get()
        if driver is not None:
            driver.check_crash()
        action = await _maybe_await(self.inner.finalize(shared, prep, result, params))
        return action if driver is None else driver.choose(self.node_id, action)


class _BatchProxy(_Proxy):
    """A proxy for a batch node (one that defines ``execute_item``)."""

    async def execute_item(self, item: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> Any:
        return await _maybe_await(self.inner.execute_item(item, shared, params, attempt))  # type: ignore[attr-defined]

    async def execute_item_fallback(
        self, item: Any, error: BaseException, shared: dict[str, Any], params: dict[str, Any], attempt: int
    ) -> Any:
        return await _maybe_await(self.inner.execute_item_fallback(item, error, shared, params, attempt))


class _FlowProxy(Flow):
    """A mirrored (sub-)flow: the user's flow's prepare / finalize around mirrored nodes."""

    def __init__(self, inner: Flow, start: BaseNode, node_id: str, max_steps: int) -> None:
        super().__init__(start, max_steps=max_steps, name=inner.name)
        self.inner = inner
        self.node_id = node_id
        self.params = inner.params
        self.on_status_update = inner.on_status_update
        self.on_artifact = inner.on_artifact

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> Any:
        return await _maybe_await(self.inner.prepare(shared, params))

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> Any:
        action = await _maybe_await(self.inner.finalize(shared, prep, result, params))
        driver = _driver.get()
        if driver is None or not self.node_id:
            return action
        return driver.choose(self.node_id, action)


class _BatchFlowProxy(_FlowProxy, BatchFlow):
    """A mirrored BatchFlow: the user's prepare gives the param sets, the passes run mirrored."""

    def __init__(self, inner: Flow, start: BaseNode, node_id: str, max_steps: int) -> None:
        super().__init__(inner, start, node_id, max_steps)
        self.parallel = inner.parallel
        self.max_concurrency = inner.max_concurrency


def scripted_flow(flow: Flow, *, max_steps: int | None = None) -> Flow:
    """A mirror of ``flow`` (same names and node ids) whose actions an active :class:`Driver` scripts."""
    if not isinstance(flow, Flow):
        raise TypeError(f"scripted_flow(flow) needs a pocketmesh Flow, got {flow!r} ({type(flow).__name__}).")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}.")
    return _mirror(flow, "", max_steps or flow.max_steps)


def _mirror(flow: Flow, node_id: str, max_steps: int) -> _FlowProxy:
    ids, _ = flow.node_ids()
    prefix = node_id + "/" if node_id else ""
    proxies: dict[BaseNode, BaseNode] = {}
    for node, nid in ids.items():
        qualified = prefix + nid
        if isinstance(node, Flow):
            proxies[node] = _mirror(node, qualified, node.max_steps)
        elif node.is_batch:
            proxies[node] = _BatchProxy(node, qualified)
        else:
            proxies[node] = _Proxy(node, qualified)
    for node in ids:
        for action, succ in node.successors.items():
            proxies[node].connect_action(action, proxies[succ])
    kind = _BatchFlowProxy if isinstance(flow, BatchFlow) else _FlowProxy
    return kind(flow, proxies[flow.start_node], node_id, max_steps)


def exits_of(flow: Flow) -> dict[str, str]:
    """Per qualified node id, an action that heads out of loops (see :func:`wiring.exit_actions`)."""
    return exit_actions(flow)
