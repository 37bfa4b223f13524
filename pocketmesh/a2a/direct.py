"""A turn's events applied to its task as the executor sends them, without the SDK's per-task
producer, consumer and event queues.

The SDK runs every message through an ``ActiveTask``: a producer task runs the executor, which
writes events to a queue; a consumer task reads them, applies each to the task (the SDK's
``TaskManager``), saves it, sends push notifications and copies the task to every subscriber's
queue. A blocking send that starts a new task has one reader, who wants only the final task, so
:class:`DirectTurn` does the same work in line: each event the executor enqueues is applied,
saved and pushed before the executor goes on; watchers (a client that subscribes to the task while
the turn runs) get each event and the task as it stood first; a cancel stops the run and records
``canceled``. What is saved, pushed and answered is what the SDK's path saves, pushes and answers.

:class:`TaskEvents` is the applying part on its own, for cancelling a task that waits for input
and has no turn running here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.agent_execution.active_task import (
    INTERRUPTED_TASK_STATES,
    TERMINAL_TASK_STATES,
)
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks.task_manager import TaskManager
from a2a.types import (
    CancelTaskRequest,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import (
    InvalidAgentResponseError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.input_mode_validator import validate_input_modes
from a2a.utils.proto_utils import validate_proto_required_fields
from a2a.utils.task import validate_history_length

from .locks import Turn, TurnLostError

if TYPE_CHECKING:
    from a2a.server.context import ServerCallContext
    from a2a.server.events import Event
    from a2a.server.tasks import PushNotificationSender, TaskStore

logger = logging.getLogger("pocketmesh.a2a")

_DONE = object()


def _copy(task: Task) -> Task:
    copy = Task()
    copy.CopyFrom(task)
    return copy


def _ends_watching(event: Any) -> bool:
    state = getattr(getattr(event, "status", None), "state", None)
    return state in TERMINAL_TASK_STATES or state in INTERRUPTED_TASK_STATES


class TaskEvents:
    """An executor's event queue that applies each event to the task at once: the SDK's
    ``TaskManager`` updates and saves the task, the push sender is told, watchers get the event.

    A ``Message`` as the only event is the turn's answer and is not stored. As the SDK does, a
    task event after a message, a message after a task event or a second message is an
    :class:`~a2a.utils.errors.InvalidAgentResponseError`, and a status update before any task
    exists too."""

    def __init__(
        self,
        store: TaskStore,
        context: ServerCallContext,
        task_id: str,
        context_id: str,
        message: Message | None,
        push_sender: PushNotificationSender | None,
        task: Task | None = None,
    ) -> None:
        self.task_id = task_id
        self.manager = TaskManager(store, context, task_id, context_id, message)
        if task is not None:
            self.manager._current_task = task
        self.push_sender = push_sender
        self.reply: Message | None = None
        self.stopped = False
        """Set once a cancel has taken the task over: the run's later events are dropped."""
        self._task_mode: bool | None = None if task is None else True
        self._refused = False
        self._watchers: set[asyncio.Queue[Any]] = set()
        self._closed = False
        self._applying = asyncio.Lock()
        self._settled = asyncio.Event()
        """Set once a cancel has written how the task ended."""

    @property
    def task(self) -> Task | None:
        """The task as the events so far have made it (``None`` before the first)."""
        return self.manager._current_task

    async def enqueue_event(self, event: Event) -> None:
        """Apply one event of the run (dropped once the task has been canceled)."""
        if self.stopped:
            logger.debug("task %s was canceled; dropping the run's %s", self.task_id, type(event).__name__)
            return
        await self.apply(event)

    async def apply(self, event: Event) -> None:
        """Apply, save and push one event, and show it to the watchers."""
        async with self._applying:
            try:
                await self._apply(event)
            except InvalidAgentResponseError:
                self._refused = True
                raise

    async def _apply(self, event: Event) -> None:
        if isinstance(event, Message):
            if self._task_mode is not None:
                raise InvalidAgentResponseError(
                    "Received Message object in task mode." if self._task_mode else "Multiple Message objects received."
                )
            self._task_mode = False
            self.reply = event
            return
        if not isinstance(event, Task | TaskStatusUpdateEvent | TaskArtifactUpdateEvent):
            raise InvalidAgentResponseError(f"Received {type(event).__name__}, which is not an A2A event.")
        if self._task_mode is False:
            raise InvalidAgentResponseError(f"Received {type(event).__name__} in message mode.")
        if isinstance(event, Task):
            if self.task is not None:
                logger.error("task %s already exists; ignoring the task the agent sent again", self.task_id)
            else:
                await self.manager.save_task_event(event)
        else:
            if isinstance(event, TaskStatusUpdateEvent) and self.task is None:
                raise InvalidAgentResponseError(f"Agent should enqueue Task before {type(event).__name__} event")
            await self.manager.process(event)
        self._task_mode = True
        task = self.task
        assert task is not None
        await self._push(task if isinstance(event, Task) else event)
        if self._watchers:
            shown = _copy(task) if isinstance(event, Task) else event
            for watcher in self._watchers:
                watcher.put_nowait(shown)

    async def _push(self, event: Task | TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> None:
        if self.push_sender is None:
            return
        try:
            await self.push_sender.send_notification(self.task_id, event)
        except Exception:
            logger.exception("push notification for task %s failed; the turn goes on", self.task_id)

    async def cancel(self, executor: AgentExecutor, call_context: ServerCallContext) -> Task:
        """Cancel the task: the executor's ``cancel`` writes how it ends, any run of it here is
        stopped, and the task ends ``canceled`` if nothing else ended it. Returns the task as it
        then stands; an executor whose ``cancel`` raises leaves the task ``failed``."""
        async with self._applying:
            task = self.task
            if task is None or task.status.state in TERMINAL_TASK_STATES or not self._running():
                raise TaskNotCancelableError
            self.stopped = True
        request = RequestContext(call_context=call_context, task_id=self.task_id, context_id=task.context_id, task=task)
        try:
            try:
                await executor.cancel(request, _Forced(self))
            except Exception:
                await self.fail()
                raise
            finally:
                await self._stop_run()
            return await self.end_canceled()
        finally:
            self._settled.set()

    def _running(self) -> bool:
        return True

    async def _stop_run(self) -> None:
        """Stop the run of the task in this process, if there is one."""

    async def end_canceled(self) -> Task:
        """The task, recorded ``canceled`` if nothing else ended it."""
        async with self._applying:
            task = self.task
            assert task is not None
            if task.status.state not in TERMINAL_TASK_STATES:
                status = TaskStatus(state=TaskState.TASK_STATE_CANCELED)
                status.timestamp.GetCurrentTime()
                await self.manager.process(TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=status))
            return _copy(self.task)  # type: ignore[arg-type]

    async def fail(self) -> None:
        """Record ``failed`` after the run raised, as the SDK does: on the task if it has not
        ended, or on a new task if the run failed before announcing one."""
        async with self._applying:
            task = self.task
            if task is not None and task.status.state in TERMINAL_TASK_STATES:
                return
            if task is None and (self._task_mode is False or self._refused):
                return  # answered with a message, or refused before a task: there is none
            status = TaskStatus(state=TaskState.TASK_STATE_FAILED)
            status.timestamp.GetCurrentTime()
            if task is None:
                task = await self.manager.ensure_task_id(self.task_id, self.manager.context_id or "")
                task.status.CopyFrom(status)
                await self.manager.save_task_event(task)
            else:
                await self.manager.process(TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=status))

    async def watch(self) -> AsyncIterator[Event]:
        """The task as it stands, then each event until the turn pauses or ends."""
        watcher: asyncio.Queue[Any] = asyncio.Queue()
        self._watchers.add(watcher)
        try:
            if self.task is not None:
                yield _copy(self.task)
            while not self._closed or not watcher.empty():
                event = await watcher.get()
                if event is _DONE:
                    return
                yield event
                if _ends_watching(event):
                    return
        finally:
            self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        """End every watch: the turn is over."""
        self._closed = True
        for watcher in self._watchers:
            watcher.put_nowait(_DONE)


class _Forced:
    """The event queue a cancel writes to: applied even though the run's events are dropped."""

    def __init__(self, events: TaskEvents) -> None:
        self._events = events

    async def enqueue_event(self, event: Event) -> None:
        await self._events.apply(event)


class DirectTurn(TaskEvents):
    """A blocking send's turn on a new task, its executor run as a child task (so a cancel can
    stop it) with this as its event queue."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runner: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    async def run(self, executor: AgentExecutor, request: RequestContext, turn: Turn | None = None) -> Message | Task | None:
        """Run the turn; its answer: the message it replied with, or its task (a copy). If the
        run raises, the task is recorded ``failed`` (unless ``turn`` lost its lock: then nothing
        more is written) and the exception goes on to the caller."""
        try:
            self._runner = asyncio.get_running_loop().create_task(
                executor.execute(request, self), name=f"execute:{self.task_id}"
            )
            try:
                await self._runner
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not self.stopped or (current is not None and current.cancelling()):
                    raise
            except Exception:
                if turn is None or turn.lost is None:
                    await self.fail()
                raise
        finally:
            self._finished.set()
            self.close_watchers()
        if self.stopped:
            await self._settled.wait()  # the cancel's own answer is the task as it ended
        if self.reply is not None:
            return self.reply
        return None if self.task is None else _copy(self.task)

    def _running(self) -> bool:
        return not self.finished

    async def _stop_run(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        await self._finished.wait()


class DirectTurnHandler(DefaultRequestHandler):
    """The SDK's request handler, able to run a blocking send's new task as a
    :class:`DirectTurn` (:meth:`_run_direct`), sending a cancel or a subscription to the task's
    turn while it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._direct: dict[str, DirectTurn] = {}

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task | None:
        """Cancel a task: one whose turn runs here without the SDK's task machinery, or one that
        waits for input with nothing of the SDK's holding it, through the executor; any other
        as the SDK does."""
        validate_proto_required_fields(params)
        running = self._direct.get(params.id)
        if running is not None and not running.finished:
            if await self.task_store.get(params.id, context) is None:
                raise TaskNotFoundError
            return await running.cancel(self.agent_executor, context)
        task = await self.task_store.get(params.id, context)
        if task is None:
            raise TaskNotFoundError
        if task.status.state in INTERRUPTED_TASK_STATES and await self._active_task_registry.get(params.id) is None:
            waiting = TaskEvents(self.task_store, context, task.id, task.context_id, None, self._push_sender, task=task)
            return await waiting.cancel(self.agent_executor, context)
        return await super().on_cancel_task(params, context)

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        """Follow a task: one whose turn runs here without the SDK's task machinery from that
        turn; any other as the SDK does."""
        validate_proto_required_fields(params)
        running = self._direct.get(params.id)
        if running is None or running.finished:
            async for event in super().on_subscribe_to_task(params, context):
                yield event
            return
        if not self._agent_card.capabilities.streaming:
            raise UnsupportedOperationError(message="Streaming is not supported by the agent")
        if await self.task_store.get(params.id, context) is None:
            raise TaskNotFoundError
        async for event in running.watch():
            yield event

    async def _run_direct(
        self, task_id: str, params: SendMessageRequest, context: ServerCallContext, held: Turn
    ) -> Message | Task | None:
        """Run a blocking send's new task straight through (:class:`~.direct.DirectTurn`): its
        events applied, saved and pushed as the executor sends them, its answer the final task
        or the message the flow replied with."""
        validate_history_length(params.configuration)
        if self._validate_input_modes:
            validate_input_modes(params.message, self._agent_card)
        message = params.message
        request = await self._request_context_builder.build(
            params=params, task_id=None, context_id=message.context_id or None, task=None, context=context
        )
        self._validate_task_id_match(task_id, request.task_id or "")
        context_id = request.context_id or ""
        configuration = params.configuration
        if self._push_config_store is not None and configuration.HasField("task_push_notification_config"):
            await self._reject_unsafe_push_url(configuration.task_push_notification_config.url)
            await self._push_config_store.set_info(task_id, configuration.task_push_notification_config, context)
        direct = DirectTurn(self.task_store, context, task_id, context_id, request.message, self._push_sender)
        self._direct[task_id] = direct
        try:
            answer = await direct.run(self.agent_executor, request, held)
        finally:
            del self._direct[task_id]
        if held.lost is not None:
            raise TurnLostError(task_id, held.lost)
        return answer
