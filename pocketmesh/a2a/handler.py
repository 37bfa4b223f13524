"""The SDK request handler, with skill checks made before any task is created."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import Message, SendMessageRequest, Task
from a2a.utils.errors import InvalidParamsError

from .executor import message_skill, task_skill
from .locks import KeyedLocks


class PocketMeshRequestHandler(DefaultRequestHandler):
    """Refuses an unknown ``skillId`` (invalid params, -32602) before anything is persisted,
    and takes the messages of one task one at a time."""

    def __init__(self, *args: Any, skills: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._skills = skills
        # The SDK lets every request on a task watch that task's one event stream, so a reply
        # could be an earlier message's; one message per task at a time keeps replies apart.
        self._turns = KeyedLocks()

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Message | Task:
        """Check the skill, then send as the SDK does."""
        task = await self._prepare(params, context)
        async with self._turn(task):
            return await super().on_message_send(params, context)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        """Check the skill, then stream as the SDK does."""
        task = await self._prepare(params, context)
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
