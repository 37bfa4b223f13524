"""``PocketMeshTaskStore``: the SDK's task store, kept in a PocketMesh persistence backend."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections import OrderedDict
from urllib.parse import quote
from typing import TYPE_CHECKING, Any

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks import TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Message, Task, TaskStatus
from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError

from ..errors import PersistenceError
from ..persistence.base import SHARED_ROWS_KEY, UNCHANGED
from ..runs import new_revision
from . import keys
from .locks import KeyedLocks
from .task_rows import KeptTask, history_bytes

if TYPE_CHECKING:
    from ..persistence.base import Persistence

_DEFAULT_PAGE_SIZE = 50


class PocketMeshTaskStore(TaskStore):
    """Stores each A2A task under run id ``a2a-task:<owner>:<task id>``, with the owner it belongs to.

    Any backend that can pause and resume flows can also hold the tasks; flow runs (run id =
    task id) live beside them. The SDK saves the task on every event, so a save writes what
    changed: on the built-in backends the record keeps the task without its history
    (``head``, base64 of the serialized protobuf) and the history message by message
    (``history``), which a save appends to; a task saved by this process and not changed since
    is read back from memory (a copy, as the SDK's own store hands out). A backend with only
    the five-method protocol gets ``{"owner": ..., "taskProto": <base64 of the serialized
    task>}``. Records holding ``"task"`` as a JSON object are read too.

    The owner (percent-encoded) is part of the run id, so a caller's tasks are the runs under
    one prefix: listing them reads only those, on a backend that lists by prefix
    (``list_runs_with_prefix``, which the built-in backends have), and otherwise loads only
    those, filtering the ids ``list_runs`` returns. Another owner's tasks cost a caller nothing.
    """

    def __init__(self, persistence: Persistence, owner_resolver: OwnerResolver = resolve_user_scope) -> None:
        self.persistence = persistence
        self._owner_of = owner_resolver
        # Ordering the saves of one task keeps a slow write from landing after a newer one.
        self._locks = KeyedLocks()
        self._kept: OrderedDict[str, KeptTask] = OrderedDict()
        self.kept_size = 1024

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def owner_prefix(owner: str) -> str:
        """The run-id prefix under which every task of ``owner`` is stored."""
        return f"{keys.TASK_RUN_PREFIX}{quote(owner, safe='')}:"

    @classmethod
    def run_id_for(cls, task_id: str, owner: str = "") -> str:
        """The persistence run id under which task ``task_id`` of ``owner`` is stored."""
        return f"{cls.owner_prefix(owner)}{task_id}"

    def run_ids_of(self, task_id: str, context: ServerCallContext) -> tuple[str, ...]:
        """The run ids a turn of ``task_id`` writes besides the run itself: the task's record."""
        return (self.run_id_for(task_id, self._owner_of(context)),)

    async def save(self, task: Task, context: ServerCallContext) -> None:
        """Save or replace the task for the caller's owner."""
        owner = self._owner_of(context)
        run_id = self.run_id_for(task.id, owner)
        async with self._locks.hold(task.id):
            save = getattr(self.persistence, "save_checkpoint", None)
            if save is None:
                record = {"owner": owner, "taskProto": base64.b64encode(task.SerializeToString()).decode("ascii")}
                await self.persistence.save_run(run_id, record, {})
                return
            kept = self._kept.pop(run_id, None) or KeptTask(owner)
            pending, appended = kept.writes(task)
            rev = new_revision()
            await save(run_id, _meta(owner, rev), "{}", None, [], pending, rev=rev)
            kept.saved(task, appended, rev)
            self._keep(run_id, kept)

    async def open_turn(
        self, task_id: str, message: Message, context: ServerCallContext, *, checked: bool = False
    ) -> TaskStatus | None:
        """Record that ``message``'s turn has begun, as the SDK records it on the turn's first
        event: the status message, then ``message``, appended to the history, the task working.

        Written from this store's current copy of the task, appending two history entries and
        replacing the head, with no task copied. Returns the task's new status; ``None``
        (nothing written) when the store has no current copy of the task, the backend lacks
        per-key writes, or the task already has the message (a redelivery): the caller then
        lets an event record it. ``checked``: the caller holds the task's turn and has just
        read it with :meth:`peek`, so the store's copy is known to be current (no other
        process writes a task while its turn is held): no second revision check.
        """
        owner = self._owner_of(context)
        run_id = self.run_id_for(task_id, owner)
        save = getattr(self.persistence, "save_checkpoint", None)
        async with self._locks.hold(task_id):
            kept = self._kept.get(run_id)
            if save is None or kept is None or not kept.parts or kept.has_message(message.message_id):
                return None
            if not checked and not await self._current(run_id, kept):
                return None
            pending, head, moved = kept.begin_turn(message)
            rev = new_revision()
            await save(run_id, _meta(owner, rev), "{}", None, [], pending, rev=rev)
            kept.turn_begun(head, moved, rev)
            self._kept.move_to_end(run_id)
            return head.status

    async def peek(self, task_id: str, context: ServerCallContext) -> tuple[Task, int] | None:
        """The task and its history's size in bytes, for reading only: the store's own copy
        when it has the current one (no copy made), else as :meth:`get` reads it."""
        owner = self._owner_of(context)
        run_id = self.run_id_for(task_id, owner)
        kept = self._kept.get(run_id)
        if kept is not None and await self._current(run_id, kept):
            return kept.task, kept.history_bytes
        task = await self.get(task_id, context)
        if task is None:
            return None
        kept = self._kept.get(run_id)
        if kept is not None and kept.task == task:
            return kept.task, kept.history_bytes
        return task, history_bytes(task)

    async def _current(self, run_id: str, kept: KeptTask) -> bool:
        load = getattr(self.persistence, "load_checkpoint", None)
        return load is not None and await load(run_id, unless_rev=kept.rev) == UNCHANGED

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        """The task, if it exists and belongs to the caller's owner."""
        owner = self._owner_of(context)
        run_id = self.run_id_for(task_id, owner)
        load = getattr(self.persistence, "load_checkpoint", None)
        if load is None:
            record = await self.persistence.load_run(run_id)
        else:
            kept = self._kept.get(run_id)
            loaded = await load(run_id, unless_rev=kept.rev) if kept is not None else await load(run_id)
            if loaded == UNCHANGED and kept is not None:
                self._kept.move_to_end(run_id)
                copy = Task()
                copy.CopyFrom(kept.task)
                return copy
            self._kept.pop(run_id, None)
            record, _count, rows = (None, 0, None) if loaded is None else loaded
            if rows is not None and _is_task_record(record) and record["owner"] == owner:
                task = _task_from(record)
                self._keep(run_id, KeptTask.loaded(owner, record, rows, task))
                return task
        if not _is_task_record(record) or record["owner"] != owner:
            return None
        return _task_from(record)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        """Delete the task record (the flow run of the same id is left alone)."""
        if await self.get(task_id, context) is not None:
            run_id = self.run_id_for(task_id, self._owner_of(context))
            self._kept.pop(run_id, None)
            await self.persistence.delete_run(run_id)

    def _keep(self, run_id: str, kept: KeptTask) -> None:
        self._kept[run_id] = kept
        while len(self._kept) > self.kept_size:
            self._kept.popitem(last=False)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """The caller's tasks, newest status first, filtered and paged as the request asks."""
        start = _page_start(params.page_token)
        owner = self._owner_of(context)
        tasks: list[Task] = []
        for run_id in await self._run_ids(self.owner_prefix(owner)):
            record = await self.persistence.load_run(run_id)
            if _is_task_record(record) and record["owner"] == owner:
                tasks.append(_task_from(record))
        if params.context_id:
            tasks = [t for t in tasks if t.context_id == params.context_id]
        if params.status:
            tasks = [t for t in tasks if t.status.state == params.status]
        if params.HasField("status_timestamp_after"):
            after = params.status_timestamp_after.ToNanoseconds()
            tasks = [t for t in tasks if t.status.HasField("timestamp") and t.status.timestamp.ToNanoseconds() >= after]
        tasks.sort(key=lambda t: (t.status.timestamp.ToNanoseconds(), t.id), reverse=True)
        size = params.page_size or _DEFAULT_PAGE_SIZE
        page = tasks[start : start + size]
        more = start + size < len(tasks)
        return ListTasksResponse(
            tasks=page,
            next_page_token=str(start + size) if more else "",
            total_size=len(tasks),
            page_size=size,
        )

    async def _run_ids(self, prefix: str) -> list[str]:
        by_prefix = getattr(self.persistence, "list_runs_with_prefix", None)
        if by_prefix is not None:
            return list(await by_prefix(prefix))
        return [run_id for run_id in await self.persistence.list_runs() if run_id.startswith(prefix)]


def _is_task_record(record: Any) -> bool:
    return isinstance(record, dict) and "owner" in record and (
        "taskProto" in record or "task" in record or isinstance(record.get("shared"), dict)
    )


def _task_from(record: dict[str, Any]) -> Task:
    encoded = record.get("taskProto")
    if encoded is None and "task" in record:
        return ParseDict(record["task"], Task(), ignore_unknown_fields=True)
    try:
        if encoded is None:
            rows = record["shared"]
            data = base64.b64decode(rows["head"], validate=True)
            data += b"".join(base64.b64decode(chunk, validate=True) for chunk in rows.get("history", ()))
            return Task.FromString(data)
        return Task.FromString(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, DecodeError, KeyError, TypeError) as error:
        raise PersistenceError(
            f"the stored A2A task record is damaged ({error}); delete its run "
            f"(a2a-task:<owner>:<task id>) from the persistence backend."
        ) from error


def _page_start(token: str) -> int:
    if not token:
        return 0
    # isdigit() alone takes "²" and other digits int() refuses; a real token is short.
    if not (token.isascii() and token.isdigit() and len(token) <= 12):
        raise InvalidParamsError(
            message=f"invalid params: pageToken {token!r:.40} is not a page token of this agent; pass the "
            f"nextPageToken of the previous page, or none for the first page."
        )
    return int(token)


def _meta(owner: str, rev: str) -> str:
    """The JSON record beside a task's per-key rows: its owner and revision."""
    return f'{{"owner":{json.dumps(owner)},"rev":"{rev}","{SHARED_ROWS_KEY}":true}}'
