"""The SDK's request handler, running a blocking send as a :class:`~.task_events.DirectTurn`
when nothing else needs the SDK's machinery for the task: a new task, or one that waits for input
with no stream or subscriber on it in this process. A cancel or a subscription that reaches the
task while such a turn runs is sent to the turn; a task waiting for input that nothing holds is
canceled through the executor, as the SDK cancels one it holds.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from a2a.server.agent_execution.active_task import (
    INTERRUPTED_TASK_STATES,
    TERMINAL_TASK_STATES,
)
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import (
    CancelTaskRequest,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import (
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.proto_utils import validate_proto_required_fields

from .locks import Turn, TurnLostError
from .task_events import DirectTurn, TaskEvents

if TYPE_CHECKING:
    from a2a.server.context import ServerCallContext
    from a2a.server.events import Event


class DirectTurnHandler(DefaultRequestHandler):
    """The SDK's request handler, able to run a blocking send as a :class:`DirectTurn`
    (:meth:`_claim_direct`, :meth:`_run_direct`), sending a cancel or a subscription to the
    task's turn while it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._direct: dict[str, DirectTurn] = {}

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task | None:
        """Cancel a task: one whose turn runs here without the SDK's task machinery, or one that
        waits for input with nothing of the SDK's holding it, through the executor; any other
        as the SDK does."""
        validate_proto_required_fields(params)
        running = self._direct.get(params.id)
        # A turn still being set up (its message going into the task) is waited for, then canceled.
        if running is not None and await running.started() and not running.finished:
            if await self.task_store.get(params.id, context) is None:
                raise TaskNotFoundError
            return await running.cancel(self.agent_executor, context)
        task = await self.task_store.get(params.id, context)
        if task is None:
            raise TaskNotFoundError
        if task.status.state in INTERRUPTED_TASK_STATES and await self._active_task_registry.get(params.id) is None:
            waiting = TaskEvents(self.task_store, context, task.id, self._push_sender)
            waiting.continue_from(task, None)
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
        stored = await self.task_store.get(params.id, context)
        if stored is None:
            raise TaskNotFoundError
        if stored.status.state in TERMINAL_TASK_STATES:
            raise UnsupportedOperationError(
                message=f"Task {stored.id} is in terminal state: {TaskState.Name(stored.status.state)}"
            )
        async for event in running.watch(stored):
            yield event

    async def _claim_direct(
        self, task_id: str, params: SendMessageRequest, context: ServerCallContext, task: Task | None
    ) -> DirectTurn | None:
        """The :class:`DirectTurn` a blocking send runs as, registered at once (a cancel or a
        subscription from now on reaches it): for a new task, or one waiting for input that
        nothing of the SDK's holds here (no stream, no subscriber on it). ``None``: the SDK's way."""
        if params.configuration.return_immediately:
            return None
        if task is not None and (
            task.status.state not in INTERRUPTED_TASK_STATES or await self._active_task_registry.get(task_id) is not None
        ):
            return None
        direct = DirectTurn(self.task_store, context, task_id, self._push_sender)
        self._direct[task_id] = direct
        return direct

    def _release_direct(self, direct: DirectTurn | None) -> None:
        if direct is None:
            return
        direct.give_up()
        if self._direct.get(direct.task_id) is direct:
            del self._direct[direct.task_id]

    async def _keep_push_config(self, params: SendMessageRequest, context: ServerCallContext, task_id: str) -> None:
        """Store the push config the message carries for its task (refusing a URL the policy
        refuses), as the SDK does when it sets a turn up."""
        configuration = params.configuration
        if self._push_config_store is not None and configuration.HasField("task_push_notification_config"):
            await self._reject_unsafe_push_url(configuration.task_push_notification_config.url)
            await self._push_config_store.set_info(task_id, configuration.task_push_notification_config, context)

    async def _run_direct(
        self, direct: DirectTurn, params: SendMessageRequest, context: ServerCallContext, held: Turn, task: Task | None
    ) -> Message | Task | None:
        """Run a blocking send's turn straight through (:class:`DirectTurn`): its events
        applied, saved and pushed as the executor sends them; its answer the final task or the
        message the flow replied with. ``task``: the task it continues, as read for the turn."""
        # The request's checks (history length, input modes, context) ran, and a follow-up's push
        # config was stored, before the turn was opened (PocketMeshRequestHandler._start, _prepare).
        message = params.message
        task_id = direct.task_id
        request = await self._request_context_builder.build(
            params=params, task_id=task_id if task else None, context_id=message.context_id or None, task=None, context=context
        )
        self._validate_task_id_match(task_id, request.task_id or "")
        if task is None:
            await self._keep_push_config(params, context, task_id)
            direct.start_new(request.context_id or "", request.message)
        else:
            # The store's copy as it stands now (the turn may have been opened in it).
            current = await self.task_store.get(task_id, context)
            if current is None:
                raise TaskNotFoundError(f"Task {task_id} not found")
            request.current_task = current
            direct.continue_from(current, request.message)
        answer = await direct.run(self.agent_executor, request, held)
        if held.lost is not None:
            raise TurnLostError(task_id, held.lost)
        return answer
