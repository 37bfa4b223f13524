"""How a message stands to its task when it arrives again: the task a re-sent first message
reaches, whether a turn already ran for it, and turns that stopped before they were answered.

A client re-sends a message whose answer it never got (a dropped connection, a server killed
mid-turn, a replica that lost the task's lock). These facts let the executor apply every
message exactly once: answer it from the task or the run record if its turn ran, run it if
it did not.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from a2a.types import Message, Role, Task

from ..runs import RunRecord
from . import keys

__all__ = ["UNANSWERED", "applied", "cut_short", "first_message_task_id", "noted_unanswered", "unanswered"]

_FIRST_MESSAGE_IDS = uuid.UUID("5b0c3f52-6f1e-4a8e-9a59-0d3b2f1c7e41")


def first_message_task_id(owner: str, context_id: str, message_id: str) -> str:
    """The id of the task a first message (no ``taskId``) with a client-chosen ``contextId`` opens.

    Derived from the owner, the context and the message ids, so the same first message sent
    again (its answer lost to a dropped connection or a server restart) reaches the same task
    and is answered from it instead of opening a second one.
    """
    return str(uuid.uuid5(_FIRST_MESSAGE_IDS, f"{owner}\0{context_id}\0{message_id}"))


def applied(record: RunRecord, message: Message) -> bool:
    """Whether the run has already finished a turn for ``message`` (it paused or ended since).

    An interrupted turn stays ``running``; a finished run refuses to run again, so its record
    answers for the message that ended it.
    """
    incoming = record.shared.get(keys.INCOMING_MESSAGE)
    return (
        record.status != "running"
        and isinstance(incoming, Mapping)
        and incoming.get("messageId") == message.message_id
    )


def cut_short(record: RunRecord, message: Message) -> bool:
    """Whether the run stopped in the middle of the turn of another message than ``message``
    (its server died mid-turn and the client sent something new instead of that message again)."""
    incoming = record.shared.get(keys.INCOMING_MESSAGE)
    return (
        record.status == "running"
        and isinstance(incoming, Mapping)
        and bool(incoming.get("messageId"))
        and incoming.get("messageId") != message.message_id
    )


UNANSWERED = "pocketmesh.unanswered"
"""Task metadata: ids of user messages whose turn stopped before the run applied them (their
server died, or lost the task's lock) and that the task then went past with another message.
They are in the history with no answer of their own, so a repeat of one runs its turn instead
of being answered with the task as it stands."""


def noted_unanswered(task: Task | None) -> list[str]:
    """The ids the task's metadata notes as unanswered (see :data:`UNANSWERED`)."""
    if task is None or not task.HasField("metadata") or UNANSWERED not in task.metadata.fields:
        return []
    value = task.metadata.fields[UNANSWERED]
    if value.WhichOneof("kind") != "list_value":
        return []
    return [v.string_value for v in value.list_value.values if v.WhichOneof("kind") == "string_value"]


def unanswered(history: Sequence[Message], message: Message, record: RunRecord | None, noted: list[str]) -> list[str]:
    """The task's unanswered messages, with the last one the task took (in ``history``, its
    messages before this turn) if its turn stopped before the run applied it (the run record
    names another) and this message is another."""
    last = next((m for m in reversed(history) if m.role == Role.ROLE_USER), None)
    if last is None or last.message_id == message.message_id or last.message_id in noted:
        return noted
    incoming = record.shared.get(keys.INCOMING_MESSAGE) if record is not None else None
    if isinstance(incoming, Mapping) and incoming.get("messageId") == last.message_id:
        return noted
    return [*noted, last.message_id]
