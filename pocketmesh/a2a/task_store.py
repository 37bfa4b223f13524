"""``PocketMeshTaskStore``: the SDK's task store, kept in a PocketMesh persistence backend."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote
from typing import TYPE_CHECKING, Any

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks import TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task
from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError

from ..errors import PersistenceError
from . import keys
from .locks import KeyedLocks

if TYPE_CHECKING:
    from ..persistence.base import Persistence

_DEFAULT_PAGE_SIZE = 50


class PocketMeshTaskStore(TaskStore):
    """Stores each A2A task under run id ``a2a-task:<owner>:<task id>``, with the owner it belongs to.

    Uses only the five-method persistence protocol, so any backend that can pause and resume
    flows can also hold the tasks; flow runs (run id = task id) live beside them. The record is
    ``{"owner": ..., "taskProto": <base64 of the serialized protobuf Task>}``: the SDK saves the
    task on every event, and the binary form costs a fraction of a JSON rendering. Records
    holding ``"task"`` as a JSON object are read too.

    The owner (percent-encoded) is part of the run id, so a caller's tasks are the runs under
    one prefix: listing them reads only those, on a backend that lists by prefix
    (``list_runs_with_prefix``, which the built-in backends have), and otherwise loads only
    those, filtering the ids ``list_runs`` returns. Another owner's tasks cost a caller nothing.
    """

    def __init__(self, persistence: Persistence, owner_resolver: OwnerResolver = resolve_user_scope) -> None:
        self.persistence = persistence
        self._owner_of = owner_resolver
        # Each save is a whole-task write; ordering them per task keeps a slow write from
        # landing after a newer one.
        self._locks = KeyedLocks()

    @staticmethod
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
        record = {"owner": owner, "taskProto": base64.b64encode(task.SerializeToString()).decode("ascii")}
        async with self._locks.hold(task.id):
            await self.persistence.save_run(self.run_id_for(task.id, owner), record, {})

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        """The task, if it exists and belongs to the caller's owner."""
        owner = self._owner_of(context)
        record = await self.persistence.load_run(self.run_id_for(task_id, owner))
        if not _is_task_record(record) or record["owner"] != owner:
            return None
        return _task_from(record)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        """Delete the task record (the flow run of the same id is left alone)."""
        if await self.get(task_id, context) is not None:
            await self.persistence.delete_run(self.run_id_for(task_id, self._owner_of(context)))

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
    return isinstance(record, dict) and "owner" in record and ("taskProto" in record or "task" in record)


def _task_from(record: dict[str, Any]) -> Task:
    encoded = record.get("taskProto")
    if encoded is None:
        return ParseDict(record["task"], Task(), ignore_unknown_fields=True)
    try:
        return Task.FromString(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, DecodeError) as error:
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
