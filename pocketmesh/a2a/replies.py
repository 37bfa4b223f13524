"""``TurnReply``: how one turn answers — through its task, or with a bare message (no task).

The SDK accepts either a ``Message`` as the only event of a request, or a ``Task`` first and task
events after it. A flow says which at run time (:meth:`A2ABaseNode.reply_with_message`), so a
new task is announced lazily: :class:`TurnReply` holds it back and enqueues it just before the
turn's first task event. Without deferral (the default) that is at once, as before; for a flow
whose first node sets ``may_reply_with_message``, working statuses wait until that node has
finished, and if it chose a message reply no task is ever announced or stored.

A node may also end the turn ``rejected`` or ``auth-required`` (:meth:`A2ABaseNode.reject`,
:meth:`A2ABaseNode.require_auth`); :meth:`TurnReply.finish` reports those states.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from a2a.server.events import Event, EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Role, Task

from . import keys

if TYPE_CHECKING:
    from ..node import BaseNode
    from ..results import StatusUpdate

logger = logging.getLogger("pocketmesh.a2a")

StatusHook = Callable[["StatusUpdate"], "Awaitable[Any] | None"]


def may_reply_with_message(flow: BaseNode | None) -> bool:
    """Whether ``flow``'s first node (inside sub-flows too) may answer with a bare message."""
    node = flow
    while node is not None:
        if getattr(node, "may_reply_with_message", False):
            return True
        node = getattr(node, "start_node", None)
    return False


class _LazyTaskQueue:
    """The request's event queue, enqueuing a held-back ``Task`` before the first task event."""

    def __init__(self, queue: EventQueue) -> None:
        self.queue = queue
        self.pending: Task | None = None

    async def announce(self) -> None:
        task, self.pending = self.pending, None
        if task is not None:
            await self.queue.enqueue_event(task)

    async def enqueue_event(self, event: Event) -> None:
        if not isinstance(event, Message):
            await self.announce()
        await self.queue.enqueue_event(event)


class TurnReply:
    """The events of one turn: the new task (announced when first needed) and how the turn ends."""

    def __init__(self, queue: EventQueue, task_id: str, context_id: str) -> None:
        self._queue = _LazyTaskQueue(queue)
        self.updater = TaskUpdater(self._queue, task_id, context_id)  # type: ignore[arg-type]
        self.context_id = context_id
        self.deferred = False
        self._decided = False
        self._held: list[StatusUpdate] = []

    @property
    def announced(self) -> bool:
        """Whether the client has the task (it existed, or it was enqueued this turn)."""
        return self._queue.pending is None

    async def open(self, task: Task, *, defer: bool) -> None:
        """The turn starts task ``task``: announce it now, or (``defer``) once it is needed."""
        self._queue.pending = task
        self.deferred = defer
        if not defer:
            await self._queue.announce()

    def hook(self, inner: StatusHook | None) -> StatusHook | None:
        """The run's status hook: ``inner`` as is, or, deferring, holding statuses until the
        first node has chosen between a message and a task."""
        if not self.deferred:
            return inner

        async def on_status_update(update: StatusUpdate) -> None:
            if not self._decided:
                if update.state == "working":
                    self._held.append(update)
                    return
                self._decided = True
                if update.shared.get(keys.REPLY_KIND) == "message":
                    self._held.clear()
                    return
                await self._queue.announce()
                held, self._held = self._held, []
                for earlier in held:
                    await _call(inner, earlier)
            if self.announced:
                await _call(inner, update)

        return on_status_update

    async def finish(self, status: str, shared: Mapping[str, Any], reply: Message | None) -> bool:
        """Report a turn the flow ended its own way (message, rejected, auth-required); ``False``
        when it ended the ordinary way, for the caller to report."""
        kind = shared.get(keys.REPLY_KIND)
        if kind == "message" and status == "completed":
            if self.announced:
                logger.debug("task %s already announced: its message reply completes it", self.updater.task_id)
                await self.updater.complete(reply)
                return True
            await self._queue.queue.enqueue_event(
                Message(
                    role=Role.ROLE_AGENT,
                    message_id=str(uuid.uuid4()),
                    context_id=self.context_id,
                    parts=list(reply.parts) if reply is not None else [],
                )
            )
            return True
        if kind == "rejected" and status == "completed":
            await self.updater.reject(reply)
            return True
        if kind == "auth-required" and status == "input-required":
            await self.updater.requires_auth(reply)
            return True
        return False


async def _call(hook: StatusHook | None, update: StatusUpdate) -> None:
    if hook is None:
        return
    result = hook(update)
    if result is not None:
        await result
