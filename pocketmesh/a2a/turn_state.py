"""The shared state a turn runs with, extended from the last turn's run record, and the records
kept between turns.

A turn does not rebuild ``__a2a_history`` from the task: it appends the messages the task got
since the last turn (that turn's reply, this message) to the history the run record already
holds, so a checkpoint stores only those (:meth:`~pocketmesh.state.TrackedState.append_items`).
The history is rebuilt from the task only when the record's is not a prefix of it (a flow
rewrote it, or an older server wrote it). :class:`LastRecords` keeps each task's record in
the process after its turn, so the next turn continues from it when the backend still holds
that revision: no load, no decoding. Every step is still saved before the next one runs; the
kept record only spares the read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from a2a.types import Message

from ..runs import RunRecord
from ..state import TrackedState
from . import keys
from .convert import message_to_dict
from .parts import first_text

TURN_OPENED = "pocketmesh.turn_opened"
"""Call-context state: the id of the message whose turn the request handler has recorded as
begun in the task store (the message appended to the history, the task working)."""

NEW_TASK_ID = "pocketmesh.new_task_id"
"""Call-context state: the id the request handler made up for a message's new task (no run
can have it yet)."""

DEFAULT_KEPT = 512
"""Records :class:`LastRecords` keeps (the least recently used goes first)."""


class LastRecords:
    """The run record each paused task's last turn ended with, in this process (bounded)."""

    def __init__(self, size: int = DEFAULT_KEPT) -> None:
        self.size = size
        self._records: OrderedDict[str, RunRecord] = OrderedDict()
        self._ids: OrderedDict[str, MessageIds] = OrderedDict()

    def message_ids(self, task_id: str) -> MessageIds:
        """The message-id index of the task's history, kept from turn to turn."""
        ids = self._ids.pop(task_id, None) or MessageIds()
        self._ids[task_id] = ids
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return ids

    def take(self, run_id: str) -> RunRecord | None:
        """The record kept for ``run_id`` (no longer kept: the turn owns it now)."""
        return self._records.pop(run_id, None)

    def keep(self, record: RunRecord) -> None:
        """Keep ``record`` for its run's next turn, if it is paused and was saved whole."""
        if record.status != "input-required" or record.rev is None or not record.image.synced:
            return
        self._records[record.run_id] = record
        while len(self._records) > self.size:
            self._records.popitem(last=False)


class MessageIds:
    """The ids of a task's history messages, brought up to date by reading only the messages
    added since the last turn (the history only grows; a history that does not start with
    the messages indexed, by count and last id, is read again whole)."""

    __slots__ = ("count", "ids", "last")

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[str] = set()
        self.last: str | None = None

    def of(self, history: Sequence[Message]) -> set[str]:
        """The ids of ``history``'s messages."""
        held = self.count
        if held and (held > len(history) or history[held - 1].message_id != self.last):
            held, self.ids = 0, set()
        self.ids.update(m.message_id for m in history[held:])
        self.count = len(history)
        self.last = history[-1].message_id if self.count else None
        return self.ids


class Earlier(Sequence[Message]):
    """A task's messages before the incoming one: its history, then its status message (if
    any), read in place rather than copied into a list."""

    def __init__(self, history: Sequence[Message], status_message: Message | None, *, held: int | None = None) -> None:
        # ``held``: how many of ``history``'s messages count (the rest came with this turn).
        self._history = history
        self._held = len(history) if held is None else held
        self._extra = status_message
        self._len = self._held + (status_message is not None)

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> Message: ...

    @overload
    def __getitem__(self, index: slice) -> list[Message]: ...

    def __getitem__(self, index: int | slice) -> Message | list[Message]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._len)
            return [self[i] for i in range(start, stop, step)]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        return self._history[index] if index < self._held else self._extra  # type: ignore[return-value]

    def __iter__(self) -> Iterator[Message]:
        history = self._history
        for i in range(self._held):
            yield history[i]
        if self._extra is not None:
            yield self._extra


def turn_shared(
    record: RunRecord | None,
    task_id: str,
    context_id: str,
    skill_id: str,
    earlier: Sequence[Message],
    message: Message,
    *,
    kept: bool = False,
) -> dict[str, Any]:
    """The shared state for ``message``'s turn: the record's, with this message and the
    messages the task got since (``earlier``: the task's messages before this one; ``kept``:
    the record is the one this process's last turn of the task ended with)."""
    shared: dict[str, Any] = TrackedState() if record is None else record.shared
    if record is not None and record.status == "running":
        arrived = dict.get(shared, keys.INCOMING_MESSAGE)
        if isinstance(arrived, Mapping) and arrived.get("messageId") == message.message_id:
            # This message's turn was cut short (the server stopped mid-run): continue it
            # from its last checkpoint with the state it had, reply parts set so far included.
            return shared
    incoming = message_to_dict(message)
    shared[keys.INCOMING_MESSAGE] = incoming
    _extend_history(shared, earlier, message, kept)
    shared[keys.TASK_ID] = task_id
    shared[keys.CONTEXT_ID] = context_id
    shared[keys.SKILL_ID] = skill_id
    shared[keys.INPUT] = first_text(incoming["parts"]) or ""
    shared.pop(keys.FINAL_RESPONSE_PARTS, None)
    shared.pop(keys.REPLY_KIND, None)
    return shared


def _extend_history(shared: dict[str, Any], earlier: Sequence[Message], message: Message, kept: bool) -> None:
    # The history gets its own copy of the message: a node changing the incoming message in
    # place must not change the history behind the checkpoint's back (or the other way round).
    history = dict.get(shared, keys.HISTORY)
    # A kept record whose last run left the history alone needs only its last message checked.
    untouched = kept and shared.__class__ is TrackedState and keys.HISTORY not in shared.before  # type: ignore[attr-defined]
    held = len(history) if history.__class__ is list else -1
    if 0 <= held <= len(earlier) and _is_prefix(history, earlier, held, check_all=not untouched):
        new = [message_to_dict(m) for m in earlier[held:]]
        new.append(message_to_dict(message))
        if shared.__class__ is TrackedState:
            shared.append_items(keys.HISTORY, new)  # type: ignore[attr-defined]
        else:
            history.extend(new)  # type: ignore[union-attr]
        return
    shared[keys.HISTORY] = [*(message_to_dict(m) for m in earlier), message_to_dict(message)]


def _is_prefix(history: list[Any], earlier: Sequence[Message], held: int, *, check_all: bool) -> bool:
    """Whether the ``held`` messages of ``history`` are the task's first ones (by id: every one
    when the history may have been changed since this process last saw it, else the last)."""
    if held == 0:
        return True
    indexes = range(held) if check_all else (held - 1,)
    for i in indexes:
        item = history[i]
        if not isinstance(item, Mapping) or item.get("messageId") != earlier[i].message_id:
            return False
    return True
