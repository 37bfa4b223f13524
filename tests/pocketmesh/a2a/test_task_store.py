"""``PocketMeshTaskStore``: binary task records kept head and history apart, older records, owners."""

from __future__ import annotations

import pytest
from a2a.auth.user import UnauthenticatedUser
from a2a.server.context import ServerCallContext
from a2a.types import Task, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict

from pocketmesh import InMemoryPersistence, PersistenceError
from pocketmesh.a2a import PocketMeshTaskStore
from pocketmesh.a2a.auth import OwnerUser


def context(owner: str | None) -> ServerCallContext:
    return ServerCallContext(user=OwnerUser(owner) if owner else UnauthenticatedUser())


def a_task(task_id: str = "t-1") -> Task:
    return Task(id=task_id, context_id="c-1", status=TaskStatus(state=TaskState.TASK_STATE_INPUT_REQUIRED), metadata={"skillId": "echo"})


async def test_saved_task_reads_back_for_its_owner_only() -> None:
    store = PocketMeshTaskStore(InMemoryPersistence())
    await store.save(a_task(), context("alice"))
    assert await store.get("t-1", context("alice")) == a_task()
    assert await store.get("t-1", context("bob")) is None
    assert await store.get("t-1", context(None)) is None
    await store.delete("t-1", context("bob"))
    assert await store.get("t-1", context("alice")) is not None
    record = await store.persistence.load_run(store.run_id_for("t-1", "alice"))
    assert set(record) == {"owner", "rev", "shared"} and record["owner"] == "alice"
    assert set(record["shared"]) == {"head", "history"}  # the task without its history, and the history
    assert store.run_id_for("t-1", "alice") == "a2a-task:alice:t-1"
    assert store.run_id_for("t-1", "a:b/c d") == "a2a-task:a%3Ab%2Fc%20d:t-1"  # one prefix per owner
    assert store.run_id_for("t-1") == "a2a-task::t-1"


async def test_json_task_records_are_still_read() -> None:
    persistence = InMemoryPersistence()
    await persistence.save_run("a2a-task::t-1", {"owner": "", "task": MessageToDict(a_task())}, {})
    assert await PocketMeshTaskStore(persistence).get("t-1", context(None)) == a_task()


async def test_a_damaged_record_says_which_run_to_delete() -> None:
    persistence = InMemoryPersistence()
    await persistence.save_run("a2a-task::t-1", {"owner": "", "taskProto": "not base64!"}, {})
    with pytest.raises(PersistenceError, match="damaged .* delete its run"):
        await PocketMeshTaskStore(persistence).get("t-1", context(None))
