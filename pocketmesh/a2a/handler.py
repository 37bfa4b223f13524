"""The SDK request handler, with skill checks made before any task is created, turns of one
task kept apart (across replicas too), and repeated messages answered without running again."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from a2a.server.agent_execution import RequestContext, SimpleRequestContextBuilder
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import Message, SendMessageRequest, Task, TaskState
from a2a.utils.errors import InvalidParamsError

from .executor import first_message_task_id, message_skill, task_skill
from .locks import TurnLocks

_TERMINAL = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)
def has_message(task: Task, message_id: str) -> bool:
    """Whether the task has already received the message ``message_id``."""
    return any(m.message_id == message_id for m in task.history) or (
        task.status.HasField("message") and task.status.message.message_id == message_id
    )


def _already_answered(params: SendMessageRequest, task: Task) -> bool:
    # The SDK refuses any message to an ended task (-32004); one it already has gets the task.
    return task.status.state in _TERMINAL and has_message(task, params.message.message_id)


class IdempotentContextBuilder(SimpleRequestContextBuilder):
    """Gives a first message that names its context the task id :func:`first_message_task_id`."""

    async def build(
        self,
        context: ServerCallContext,
        params: SendMessageRequest | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        task: Task | None = None,
    ) -> RequestContext:
        if (
            task_id is None
            and context_id
            and params is not None
            and params.HasField("message")
            and params.message.message_id
        ):
            task_id = first_message_task_id(resolve_user_scope(context), context_id, params.message.message_id)
        return await super().build(context, params=params, task_id=task_id, context_id=context_id, task=task)


class PocketMeshRequestHandler(DefaultRequestHandler):
    """Refuses an unknown ``skillId`` (invalid params, -32602) before anything is persisted,
    takes the messages of one task one at a time, and answers a message the task already
    has (same ``messageId``) with the task as it stands, even once the task has ended."""

    def __init__(self, *args: Any, skills: Mapping[str, Any], turns: TurnLocks, **kwargs: Any) -> None:
        kwargs.setdefault("request_context_builder", IdempotentContextBuilder(should_populate_referred_tasks=False))
        super().__init__(*args, **kwargs)
        self._skills = skills
        # The SDK lets every request on a task watch that task's one event stream, so a reply
        # could be an earlier message's; one message per task at a time keeps replies apart,
        # and the store's cross-process lock keeps replicas' turns apart the same way.
        self._turns = turns

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        """Check the skill, then send as the SDK does."""
        task = await self._prepare(params, context)
        if task is not None and _already_answered(params, task):
            return task
        async with self._turn(task):
            return await super().on_message_send(params, context)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        """Check the skill, then stream as the SDK does."""
        task = await self._prepare(params, context)
        if task is not None and _already_answered(params, task):
            yield task
            return
        async with self._turn(task):
            async for event in super().on_message_send_stream(params, context):
                yield event

    def _turn(self, task: Task | None) -> AbstractAsyncContextManager[None]:
        # A new task has nothing to wait for; neither has a task id the caller may not see
        # (waiting on another owner's busy task would tell that it exists).
        return self._turns.hold(task.id) if task is not None else nullcontext()

    async def _prepare(self, params: SendMessageRequest, context: ServerCallContext) -> Task | None:
        """The caller's task the message continues (``None`` for a new or an unknown one)."""
        message = params.message if params.HasField("message") else None
        task = None
        if message is not None and message.task_id:
            task = await self.task_store.get(message.task_id, context)
            if task is not None and not message.context_id:
                # Otherwise the SDK invents a context id for the follow-up, and a task it has
                # not got in memory (after a restart) would then reject the task's own events.
                message.context_id = task.context_id
        elif message is not None and message.context_id and message.message_id:
            # A first message sent again: continue the task the first delivery opened.
            derived = first_message_task_id(resolve_user_scope(context), message.context_id, message.message_id)
            task = await self.task_store.get(derived, context)
            if task is not None:
                message.task_id = derived
        self._check_skill(message, task)
        return task

    def _check_skill(self, message: Message | None, task: Task | None) -> None:
        skill = message_skill(message)
        if skill is None:
            if message is not None and message.HasField("metadata") and "skillId" in message.metadata:
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
        if message is not None and message.task_id:
            started = task_skill(task)
            if started is not None and started != skill:
                raise InvalidParamsError(
                    message=(
                        f"task {message.task_id!r} runs skill {started!r} and cannot switch to {skill!r}; "
                        f"send without skillId to continue it, or start a new task for {skill!r}."
                    )
                )
