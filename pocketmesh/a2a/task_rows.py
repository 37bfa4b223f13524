"""A task as the task store keeps it on a backend with per-key rows: its head (the task
without its history) and its history, message by message, which a save appends to; and the
store's in-memory copy of what the backend holds."""

from __future__ import annotations

import base64
from typing import Any

from a2a.types import Message, Task

from ..state import Pending

__all__ = ["KeptTask", "b64", "copy_field", "history_bytes", "history_field"]


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
        head = Task()
        if count <= SMALL:
            head.CopyFrom(task)
            del head.history[:]
        else:
            for field, value in task.ListFields():
                if field.name != "history":
                    copy_field(head, field, value)
        pending = Pending(self.parts == 0)
        pending.puts.append(("head", self.positions["head"], f'"{b64(head.SerializeToString())}"'))
        position = self.positions["history"]
        if self.parts and held <= count and (held == 0 or history[held - 1].message_id == saved.history[held - 1].message_id):
            if count > held:
                items = ",".join(f'"{history_field(m)}"' for m in history[held:])
                pending.appends.append(("history", position, self.parts, f"[{items}]"))
            return pending, True
        if self.parts > 1:
            pending.resets.append(("history", self.parts))
        pending.puts.append(("history", position, "[" + ",".join(f'"{history_field(m)}"' for m in history) + "]"))
        return pending, False

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
            if self.ids is not None:
                self.ids.update(m.message_id for m in new)
            self.parts += 1
            self.history_bytes += sum(m.ByteSize() for m in new)
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
