"""A turn's events applied to its task as the executor sends them, without the SDK's per-task
producer, consumer and event queues.

The SDK runs every message through an ``ActiveTask``: a producer task runs the executor, which
writes events to a queue; a consumer task reads them, applies each to the task (the SDK's
``TaskManager``), saves it, sends push notifications and copies the task to every subscriber's
queue. :class:`DirectTurn` does the same work in line, for a turn with one reader who wants only
the final task (a blocking send): each event the executor enqueues is applied, saved and pushed
before the executor goes on; watchers (a client that subscribes to the task while the turn runs)
get each event, after the task as it stood; a cancel stops the run and records ``canceled``.
What is saved, pushed and answered is what the SDK's path saves, pushes and answers.

:class:`TaskEvents` is the applying part on its own, also used to cancel a task that waits for
input with no turn running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.agent_execution.active_task import (
    INTERRUPTED_TASK_STATES,
    TERMINAL_TASK_STATES,
)
from a2a.server.tasks.task_manager import TaskManager
from a2a.types import (
    Message,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import (
    InvalidAgentResponseError,
    TaskNotCancelableError,
)

from .locks import Turn

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
        push_sender: PushNotificationSender | None,
    ) -> None:
        self.task_id = task_id
        self._store = store
        self._context = context
        self._manager: TaskManager | None = None
        self.push_sender = push_sender
        self.reply: Message | None = None
        self.stopped = False
        """Set once a cancel has taken the task over: the run's later events are dropped."""
        self._task_mode: bool | None = None
        self._message_to_save: Message | None = None
        self._refused = False
        self._watchers: set[asyncio.Queue[Any]] = set()
        self._closed = False
        self._applying = asyncio.Lock()
        self._settled = asyncio.Event()
        """Set once a cancel has written how the task ended."""

    def start_new(self, context_id: str, message: Message | None) -> None:
        """The events are a new task's, opened by ``message``."""
        self._manager = TaskManager(self._store, self._context, self.task_id, context_id, message)
        self._message_to_save = message

    def continue_from(self, task: Task, message: Message | None) -> None:
        """The events continue ``task`` (this object's to change from now on), for ``message``:
        put in the history before the first event unless the task already has it."""
        self._manager = TaskManager(self._store, self._context, self.task_id, task.context_id, message)
        self._manager._current_task = task
        self._message_to_save = message
        self._task_mode = True

    @property
    def manager(self) -> TaskManager:
        """The SDK's ``TaskManager`` the events go through (set by :meth:`start_new` or
        :meth:`continue_from`)."""
        if self._manager is None:
            raise RuntimeError(f"task {self.task_id}: call start_new or continue_from before sending events")
        return self._manager

    @property
    def task(self) -> Task | None:
        """The task as the events so far have made it (``None`` before the first)."""
        return None if self._manager is None else self._manager._current_task

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
            self._message_to_save = None
        else:
            if isinstance(event, TaskStatusUpdateEvent) and self.task is None:
                raise InvalidAgentResponseError(f"Agent should enqueue Task before {type(event).__name__} event")
            await self._save_message(event.context_id)
            await self.manager.process(event)
        self._task_mode = True
        task = self.task
        assert task is not None
        await self._push(task if isinstance(event, Task) else event)
        if self._watchers:
            shown = _copy(task) if isinstance(event, Task) else event
            for watcher in self._watchers:
                watcher.put_nowait(shown)

    async def _save_message(self, context_id: str) -> None:
        """Put the turn's message in the history (after the status message it answers) before
        the turn's first change to the task, unless the task has it already."""
        message, self._message_to_save = self._message_to_save, None
        if message is None:
            return
        task = await self.manager.ensure_task_id(self.task_id, context_id)
        if not any(m.message_id == message.message_id for m in task.history):
            await self.manager.save_task_event(self.manager.update_with_message(message, task))

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
                await self._save_message(task.context_id)
                await self.manager.process(TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=status))

    async def watch(self, stored: Task) -> AsyncIterator[Event]:
        """The task as it stands (``stored``, the store's copy, until the run has the task),
        then each event until the turn pauses or ends."""
        watcher: asyncio.Queue[Any] = asyncio.Queue()
        self._watchers.add(watcher)
        try:
            yield stored if self.task is None else _copy(self.task)
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
    """A blocking send's turn, its executor run as a child task (so a cancel can stop it) with
    this as its event queue: :meth:`start_new` or :meth:`continue_from`, then :meth:`run`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runner: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()
        self._settled_start = asyncio.Event()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    async def started(self) -> bool:
        """Wait until the run has started (``True``) or the turn was given up before it
        (``False``: a check refused it, or it went the SDK's way)."""
        await self._settled_start.wait()
        return self._runner is not None

    def give_up(self) -> None:
        """The turn is over, whether or not it ran."""
        self._settled_start.set()

    async def run(self, executor: AgentExecutor, request: RequestContext, turn: Turn | None = None) -> Message | Task | None:
        """Run the turn; its answer: the message it replied with, or its task (a copy). If the
        run raises, the task is recorded ``failed`` (unless ``turn`` lost its lock: then nothing
        more is written) and the exception goes on to the caller."""
        try:
            self._runner = asyncio.get_running_loop().create_task(
                executor.execute(request, self), name=f"execute:{self.task_id}"
            )
            self._settled_start.set()
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
