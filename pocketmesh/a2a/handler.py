"""The SDK request handler, with each message checked before anything is stored, turns of one
task kept apart (across replicas too), and repeated messages answered without running again.

A turn is one message's run through the SDK's task machinery. The SDK runs every message of a
task through one producer, one message after the other, and lets every request on the task
watch that producer's single event stream; so a request that started watching while another
message's run was still under way would take that run's answer for its own. Each turn
therefore runs in a task of its own (:class:`_TurnRun`) that holds the task's turn lock from
before it hands the message to the SDK until the SDK reports that message done, whatever the
client does meanwhile: a client that drops a stream, or a blocking send that returns at once
(``returnImmediately``), leaves the turn running, and holding the lock, to its end.

A blocking send (the usual request: one message, one answer) has no other request to share its
events with, so when nothing else in this process follows the task (a new task, or one waiting
for input with no stream or subscriber on it) its turn skips the SDK's producer and consumer:
:class:`~pocketmesh.a2a.task_events.DirectTurn` applies, saves and pushes each event as the
executor sends it, under the same turn lock, and answers with the final task
(:mod:`pocketmesh.a2a.direct`). Streams, ``returnImmediately`` and turns of a task someone
follows go through the SDK's machinery.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from a2a.server.agent_execution import RequestContext, SimpleRequestContextBuilder
from a2a.server.agent_execution.active_task import (
    INTERRUPTED_TASK_STATES,
    TERMINAL_TASK_STATES,
)
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.owner_resolver import resolve_user_scope
from a2a.types import (
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    Task,
    TaskState,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.input_mode_validator import validate_input_modes
from a2a.utils.proto_utils import validate_proto_required_fields
from a2a.utils.task import apply_history_length, validate_history_length

from .direct import DirectTurnHandler
from .executor import message_skill, task_skill
from .locks import TurnLocks, TurnLostError
from .messages import MessageLimits, check_history, check_list_request, check_message
from .redelivery import first_message_task_id
from .turn_state import NEW_TASK_ID, TURN_OPENED


def has_message(task: Task, message_id: str) -> bool:
    """Whether the task has already received the message ``message_id``."""
    return any(m.message_id == message_id for m in task.history) or (
        task.status.HasField("message") and task.status.message.message_id == message_id
    )


def _already_answered(params: SendMessageRequest, task: Task) -> bool:
    # The SDK refuses any message to an ended task (-32004); one it already has gets the task.
    return task.status.state in TERMINAL_TASK_STATES and has_message(task, params.message.message_id)


class IdempotentContextBuilder(SimpleRequestContextBuilder):
    """Gives a message's new task the id the handler chose for it (:data:`NEW_TASK_ID`), and a
    first message that names its context the task id :func:`first_message_task_id`."""

    async def build(
        self,
        context: ServerCallContext,
        params: SendMessageRequest | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        task: Task | None = None,
    ) -> RequestContext:
        if task_id is None:
            task_id = context.state.get(NEW_TASK_ID)
        if (
            task_id is None
            and context_id
            and params is not None
            and params.HasField("message")
            and params.message.message_id
        ):
            task_id = first_message_task_id(resolve_user_scope(context), context_id, params.message.message_id)
        return await super().build(context, params=params, task_id=task_id, context_id=context_id, task=task)


_END = object()


class _TurnRun:
    """One message's turn, run in an asyncio task of its own; its events reach the request
    through a queue, and the turn goes on to its end if the request stops reading."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.reading = True
        self.active_task: Any = None

    def put(self, item: Any) -> None:
        if self.reading:
            self.events.put_nowait(item)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncIterator[Event]]:
        """The turn's events for the ``async with`` body; the request may stop reading early."""
        try:
            yield self._events()
        finally:
            self.reading = False

    async def _events(self) -> AsyncIterator[Event]:
        while self.reading:
            item = await self.events.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class PocketMeshRequestHandler(DirectTurnHandler):
    """Checks each message (:mod:`pocketmesh.a2a.messages`) and its ``skillId`` before anything
    is persisted, runs the messages of one task one at a time, each to its end, and answers a
    message the task already has (same ``messageId``) with the task as it stands, even once the
    task has ended."""

    def __init__(
        self,
        *args: Any,
        skills: Mapping[str, Any],
        turns: TurnLocks,
        limits: MessageLimits | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("request_context_builder", IdempotentContextBuilder(should_populate_referred_tasks=False))
        super().__init__(*args, **kwargs)
        self._skills = skills
        self._turns = turns
        self.limits = limits or MessageLimits()
        self._running: set[asyncio.Task[None]] = set()

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        """Run the message's turn; answer with the task once the turn pauses or ends (or at once,
        with ``returnImmediately``), as the SDK does."""
        turn = await self._start(params, context, replace_status_update_with_task=True)
        result: Message | Task | None = None
        immediately = params.configuration.return_immediately
        async with turn.read() as events:
            async for event in events:
                if isinstance(event, Task) and (
                    immediately or event.status.state in (TERMINAL_TASK_STATES | INTERRUPTED_TASK_STATES)
                ):
                    self._validate_task_id_match(turn.task_id, event.id)
                    result = event
                    # A failed task may be followed by the run's exception, which then answers.
                    if immediately or event.status.state != TaskState.TASK_STATE_FAILED:
                        break
                if isinstance(event, Message):
                    result = event
        if result is None:
            result = await self._current_task(turn, context)
        if isinstance(result, Task):
            result = apply_history_length(result, params.configuration)
        return result

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        """Run the message's turn and stream its events, as the SDK does."""
        if not self._agent_card.capabilities.streaming:
            raise UnsupportedOperationError(message="Streaming is not supported by the agent")
        turn = await self._start(params, context, replace_status_update_with_task=False)
        async with turn.read() as events:
            async for event in events:
                if isinstance(event, Task):
                    self._validate_task_id_match(turn.task_id, event.id)
                    yield apply_history_length(event, params.configuration)
                else:
                    yield event

    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """Refuse a filter on a state that does not exist, then list as the SDK does."""
        check_list_request(params)
        return await super().on_list_tasks(params, context)

    async def aclose(self) -> None:
        """Drain the SDK's running tasks, then every turn still finishing in the background."""
        await super().aclose()
        for turn in list(self._running):
            turn.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _start(
        self, params: SendMessageRequest, context: ServerCallContext, *, replace_status_update_with_task: bool
    ) -> _TurnRun:
        """Check the message, pick the task it goes to, and start its turn."""
        validate_proto_required_fields(params)
        validate_history_length(params.configuration)
        message = params.message
        if self._validate_input_modes:
            validate_input_modes(message, self._agent_card)
        check_message(message, self.limits)
        self._check_skill(message, None)
        if message.task_id:
            # Only a task the caller may see is waited for: waiting on another owner's busy
            # task would tell that it exists.
            if await self._read_task(message.task_id, context) is None:
                raise TaskNotFoundError(f"Task {message.task_id} not found")
            task_id = message.task_id
        elif message.context_id and message.message_id:
            # A first message sent again reaches the task its first delivery opened.
            task_id = first_message_task_id(resolve_user_scope(context), message.context_id, message.message_id)
        else:
            task_id = str(uuid.uuid4())
            context.state[NEW_TASK_ID] = task_id
        turn = _TurnRun(task_id)
        running = asyncio.get_running_loop().create_task(
            self._run_turn(turn, params, context, replace_status_update_with_task), name=f"turn:{task_id}"
        )
        self._running.add(running)
        running.add_done_callback(self._running.discard)
        return turn

    async def _run_turn(
        self, turn: _TurnRun, params: SendMessageRequest, context: ServerCallContext, replace: bool
    ) -> None:
        try:
            covers = getattr(self.task_store, "run_ids_of", lambda *_: ())(turn.task_id, context)
            async with self._turns.hold(turn.task_id, covers=covers) as held:
                task = await self._prepare(params, context, turn.task_id)
                if task is not None and _already_answered(params, task):
                    turn.put(task)
                    return
                direct = await self._claim_direct(turn.task_id, params, context, task) if replace else None
                try:
                    if replace and task is not None and await self._open_turn(params, context, task):
                        context.state[TURN_OPENED] = params.message.message_id
                    if direct is not None:
                        answer = await self._run_direct(direct, params, context, held, task)
                        if answer is not None:
                            turn.put(answer)
                        return
                finally:
                    self._release_direct(direct)
                active_task, request_context = await self._setup_active_task(params, context)
                turn.active_task = active_task
                try:
                    async for event in active_task.subscribe(
                        request=request_context, include_initial_task=False, replace_status_update_with_task=replace
                    ):
                        if held.lost is None:
                            turn.put(event)
                finally:
                    if held.lost is not None:
                        # Whatever the SDK reports after the loss is not this turn's answer:
                        # the turn stopped, and nothing it did since was saved.
                        turn.put(TurnLostError(turn.task_id, held.lost))
        except Exception as error:  # noqa: BLE001 - handed to the request, which raises it
            turn.put(error)
        finally:
            turn.put(_END)

    async def _open_turn(self, params: SendMessageRequest, context: ServerCallContext, task: Task) -> bool:
        """Record a blocking follow-up's turn as begun (message in the history, task working)
        straight in the store, so GetTask and ListTasks read it working while the flow runs,
        and tell the task's push receivers, without a working-status event: that event would
        cost the SDK a copy of the whole task for the one subscriber, who waits for the final
        task anyway. A message asked to be answered at once, or one the task has already seen,
        goes the usual way."""
        open_turn = getattr(self.task_store, "open_turn", None)
        message = params.message
        if (
            open_turn is None
            or params.configuration.return_immediately
            or task.status.state not in INTERRUPTED_TASK_STATES
        ):
            return False
        # The task was just read with the store's peek (_read_task) under this turn, which no
        # other process can write meanwhile.
        status = await open_turn(task.id, message, context, checked=True)
        if status is None:
            return False
        if self._push_sender is not None:
            event = TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=status)
            await self._push_sender.send_notification(task.id, event)
        return True

    async def _prepare(self, params: SendMessageRequest, context: ServerCallContext, task_id: str) -> Task | None:
        """The caller's task the message continues, read under its turn (``None``: a new task)."""
        message = params.message
        # An id this handler has just made up names no task yet: no need to ask the store.
        fresh = context.state.get(NEW_TASK_ID) == task_id
        read = None if fresh else await self._read_task(task_id, context)
        task, history_bytes = (None, None) if read is None else read
        if message.task_id:
            if task is None:
                raise TaskNotFoundError(f"Task {message.task_id} not found")
            if message.context_id and message.context_id != task.context_id:
                raise InvalidParamsError(
                    message=f"contextId {message.context_id!r} is not the context of task {task.id!r} "
                    f"({task.context_id!r}); send the task's contextId, or none."
                )
            if not message.context_id:
                # Otherwise the SDK invents a context id for the follow-up, and a task it has
                # not got in memory (after a restart) would then reject the task's own events.
                message.context_id = task.context_id
        elif task is not None:
            # A first message sent again: continue the task the first delivery opened.
            message.task_id = task_id
        self._check_skill(message, task)
        check_history(task, message, self.limits, history_bytes)
        if task is not None:
            # Stored (or refused) before the turn is opened: a refused URL leaves the task as it was.
            await self._keep_push_config(params, context, task_id)
        return task

    async def _read_task(self, task_id: str, context: ServerCallContext) -> tuple[Task, int | None] | None:
        """The task to read (never to change) and its history's size if the store knows it."""
        peek = getattr(self.task_store, "peek", None)
        if peek is not None:
            return await peek(task_id, context)  # type: ignore[no-any-return]
        task = await self.task_store.get(task_id, context)
        return None if task is None else (task, None)

    async def _current_task(self, turn: _TurnRun, context: ServerCallContext) -> Task:
        if turn.active_task is not None:
            return await turn.active_task.get_task()  # type: ignore[no-any-return]
        task = await self.task_store.get(turn.task_id, context)
        if task is None:
            raise TaskNotFoundError(f"Task {turn.task_id} not found")
        return task

    def _check_skill(self, message: Message, task: Task | None) -> None:
        skill = message_skill(message)
        if skill is None:
            if message.HasField("metadata") and "skillId" in message.metadata:
                value = message.metadata["skillId"]
                raise InvalidParamsError(
                    message=(
                        f"message.metadata.skillId must be a skill id (a non-empty string), got {value!r:.40}; "
                        f"this agent has: {', '.join(self._skills)}."
                    )
                )
            return
        if skill not in self._skills:
            raise InvalidParamsError(
                message=(
                    f"unknown skill {skill!r}; this agent has: {', '.join(self._skills)}. "
                    f"Set message.metadata.skillId to one of them, or leave it out for the default."
                )
            )
        if message.task_id and task is not None:
            started = task_skill(task)
            if started is not None and started != skill:
                raise InvalidParamsError(
                    message=(
                        f"task {message.task_id!r} runs skill {started!r} and cannot switch to {skill!r}; "
                        f"send without skillId to continue it, or start a new task for {skill!r}."
                    )
                )
