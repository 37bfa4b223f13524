"""A task as the task store keeps it on a backend with per-key rows: its head (the task
without its history) and its history, message by message, which a save appends to; and the
store's in-memory copy of what the backend holds."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from a2a.types import Message, Task, TaskState

from ..state import Pending

__all__ = ["KeptTask", "b64", "copy_field", "head_of", "history_bytes", "history_field"]


class KeptTask:
    """A task as this store last saved or read it, and what the backend holds of it: its
    ``head`` (the task without its history) and its ``history`` (each message as a ``Task``
    history field), both base64, in per-key rows, the history in ``parts`` appended pieces."""

    __slots__ = ("history_bytes", "ids", "owner", "parts", "positions", "rev", "task")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.rev: str | None = None
        self.task = Task()
        self.history_bytes = 0
        self.parts = 0
        """Stored pieces of the history row (0: nothing stored yet)."""
        self.positions = {"head": 0, "history": 1}
        self.ids: set[str] | None = None
        """The ids of the history's messages, once asked for (kept up to date from then on)."""

    def has_message(self, message_id: str) -> bool:
        """Whether the task has received message ``message_id`` (in its history or status)."""
        task = self.task
        if task.status.HasField("message") and task.status.message.message_id == message_id:
            return True
        if self.ids is None:
            self.ids = {m.message_id for m in task.history}
        return message_id in self.ids

    @classmethod
    def loaded(cls, owner: str, record: dict[str, Any], rows: Any, task: Task) -> KeptTask:
        kept = cls(owner)
        kept.rev = record.get("rev")
        kept.task.CopyFrom(task)
        kept.history_bytes = history_bytes(task)
        known = {key: (pos, parts) for key, pos, parts in rows}
        if set(known) == {"head", "history"}:
            kept.positions = {key: pos for key, (pos, _parts) in known.items()}
            kept.parts = known["history"][1]
        return kept

    def writes(self, task: Task) -> tuple[Pending, bool]:
        """What to write so the backend holds ``task``: its head, and its history's new
        messages appended when the kept history is the start of the task's (by count and last
        message id), else all of it. Also whether the history was appended to."""
        saved, history = self.task, task.history
        held, count = len(saved.history), len(history)
        pending = Pending(self.parts == 0)
        self._put_head(pending, head_of(task))
        if self.parts and held <= count and (held == 0 or history[held - 1].message_id == saved.history[held - 1].message_id):
            if count > held:
                self._append_history(pending, history[held:])
            return pending, True
        if self.parts > 1:
            pending.resets.append(("history", self.parts))
        pending.puts.append(("history", self.positions["history"], "[" + ",".join(f'"{history_field(m)}"' for m in history) + "]"))
        return pending, False

    def begin_turn(self, message: Message) -> tuple[Pending, Task, list[Message]]:
        """What to write so the backend holds the task with ``message``'s turn begun, as the
        SDK records it on a turn's first event: the status message, then ``message``,
        appended to the history, the task working. Returns the write, the new head and the
        messages appended, for :meth:`turn_begun` once written (no task copied)."""
        task = self.task
        moved: list[Message] = []
        if task.status.HasField("message"):
            reply = Message()
            reply.CopyFrom(task.status.message)
            moved.append(reply)
        moved.append(message)
        head = head_of(task)
        head.status.ClearField("message")
        head.status.state = TaskState.TASK_STATE_WORKING
        head.status.timestamp.GetCurrentTime()
        pending = Pending(False)
        self._put_head(pending, head)
        self._append_history(pending, moved)
        return pending, head, moved

    def turn_begun(self, head: Task, moved: list[Message], rev: str) -> None:
        """Record that the backend holds what :meth:`begin_turn` wrote."""
        self.rev = rev
        self._took(moved)
        self.task.history.extend(moved)
        self.task.status.CopyFrom(head.status)

    def _put_head(self, pending: Pending, head: Task) -> None:
        pending.puts.append(("head", self.positions["head"], f'"{b64(head.SerializeToString())}"'))

    def _append_history(self, pending: Pending, messages: Sequence[Message]) -> None:
        items = ",".join(f'"{history_field(m)}"' for m in messages)
        pending.appends.append(("history", self.positions["history"], self.parts, f"[{items}]"))

    def _took(self, new: Sequence[Message]) -> None:
        """Count ``new``, appended to the stored history as one more piece."""
        if self.ids is not None:
            self.ids.update(m.message_id for m in new)
        self.parts += 1
        self.history_bytes += sum(m.ByteSize() for m in new)

    def saved(self, task: Task, appended: bool, rev: str) -> None:
        """Record that the backend holds ``task`` now (as :meth:`writes` wrote it)."""
        saved, history = self.task, task.history
        held, count = len(saved.history), len(history)
        self.rev = rev
        if not appended:
            self.parts = 1
            self.ids = None
            saved.CopyFrom(task)
            self.history_bytes = history_bytes(task)
            return
        new = history[held:]
        if new:
            self._took(new)
        if count <= SMALL:
            saved.CopyFrom(task)
            return
        # The kept copy follows the same way: its head replaced, the new messages added.
        for field, _value in saved.ListFields():
            if field.name != "history":
                saved.ClearField(field.name)
        for field, value in task.ListFields():
            if field.name != "history":
                copy_field(saved, field, value)
        saved.history.extend(new)


SMALL = 16
"""Up to this many history messages, copying a whole task costs less than copying its parts."""


def head_of(task: Task) -> Task:
    """``task`` without its history."""
    head = Task()
    if len(task.history) <= SMALL:
        head.CopyFrom(task)
        del head.history[:]
    else:
        for field, value in task.ListFields():
            if field.name != "history":
                copy_field(head, field, value)
    return head


def history_field(message: Message) -> str:
    """``message`` as a serialized ``Task.history`` entry (field 5, length-delimited), base64:
    a task's bytes followed by such entries parse as the task with those messages appended."""
    body = message.SerializeToString()
    size, prefix = len(body), bytearray(b"\x2a")
    while size > 0x7F:
        prefix.append((size & 0x7F) | 0x80)
        size >>= 7
    prefix.append(size)
    return b64(bytes(prefix) + body)


def history_bytes(task: Task) -> int:
    """The bytes of a task's history messages (as :func:`~pocketmesh.a2a.messages.history_size` counts them)."""
    return sum(m.ByteSize() for m in task.history)


def copy_field(target: Task, field: Any, value: Any) -> None:
    if field.is_repeated:
        getattr(target, field.name).extend(value)
    elif field.message_type is not None:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
