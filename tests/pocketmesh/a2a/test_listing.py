"""Task states and ListTasks over real HTTP: a running task reads WORKING (with a timestamp) and
is listed as the newest; listing reads only the caller's own tasks."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.server.context import ServerCallContext
from a2a.types import Task, TaskState, TaskStatus

from pocketmesh import Flow, InMemoryPersistence, SQLitePersistence
from pocketmesh.a2a import A2ABaseNode, BearerAuth, PocketMeshTaskStore
from pocketmesh.a2a.auth import OwnerUser
from tests.pocketmesh.persistence.conftest import SERVER_ENV, SeedInMemoryPersistence, drop_backend, make_backend

from .conftest import make_flows, serving

V1 = {"A2A-Version": "1.0"}


class Held(A2ABaseNode):
    """Answers each input and asks for more; the input "hold" first waits for the class's gate."""

    entered: asyncio.Event
    gate: asyncio.Event

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        if shared.get("input") == "hold":
            self.entered.set()
            await self.gate.wait()

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part(f"done: {shared.get('input')}")])
        return "input-required"


def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def send(text: str, task_id: str | None = None, **configuration: Any) -> dict[str, Any]:
    message = {"role": "ROLE_USER", "messageId": str(uuid.uuid4()), "parts": [{"text": text}], **({"taskId": task_id} if task_id else {})}
    return rpc("SendMessage", {"message": message, "configuration": configuration})


@pytest.mark.parametrize("follow_up", [False, True], ids=["new task", "follow-up turn"])
@pytest.mark.parametrize("immediately", [False, True], ids=["blocking", "returnImmediately"])
async def test_a_task_run_by_send_message_reads_working_and_is_listed(immediately: bool, follow_up: bool) -> None:
    node = Held()
    node.entered, node.gate = asyncio.Event(), asyncio.Event()
    async with serving({"held": Flow(node)}) as served, httpx.AsyncClient(timeout=30) as http:

        async def call(body: dict[str, Any]) -> dict[str, Any]:
            answer = (await http.post(served.rpc_url, json=body, headers=V1)).json()
            assert "error" not in answer, answer
            return answer["result"]  # type: ignore[no-any-return]

        # A follow-up turn runs on the task created first: only its status can list it first.
        earlier = (await call(send("earlier")))["task"] if follow_up else None
        older = (await call(send("before")))["task"]
        sending = asyncio.create_task(call(send("hold", earlier["id"] if earlier else None, returnImmediately=immediately)))
        await asyncio.wait_for(node.entered.wait(), 30)
        if immediately:
            running_id = (await sending)["task"]["id"]
        else:
            listed = await call(rpc("ListTasks", {}))
            running_id = listed["tasks"][0]["id"]
        running = await call(rpc("GetTask", {"id": running_id, "historyLength": 10}))
        listed = await call(rpc("ListTasks", {}))
        after_older = await call(rpc("ListTasks", {"statusTimestampAfter": running["status"]["timestamp"]}))
        working = await call(rpc("ListTasks", {"status": "TASK_STATE_WORKING"}))
        node.gate.set()
        if not immediately:
            assert (await sending)["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"

    assert running_id == (earlier["id"] if earlier else running_id)
    assert running["status"]["state"] == "TASK_STATE_WORKING"
    # The running turn's message is in the history already, after the answer to the one before.
    texts = [m["parts"][0]["text"] for m in running["history"]]
    assert texts == (["earlier", "done: earlier", "hold"] if follow_up else ["hold"])
    assert running["status"]["timestamp"] >= older["status"]["timestamp"]
    assert [t["id"] for t in listed["tasks"]][:2] == [running_id, older["id"]]  # newest status first
    assert [t["id"] for t in after_older["tasks"]] == [running_id]
    assert [t["id"] for t in working["tasks"]] == [running_id]


class CountingStore:
    """A backend, counting the task records it loads and the run ids it lists."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.loads: Counter[str] = Counter()
        self.listed = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.backend, name)
        if name in ("load_run", "load_checkpoint"):

            async def load(run_id: str, **kwargs: Any) -> Any:
                if run_id.startswith("a2a-task:"):
                    self.loads[run_id] += 1
                return await attribute(run_id, **kwargs)

            return load
        if name in ("list_runs", "list_runs_with_prefix"):

            async def listing(*args: Any) -> list[str]:
                ids: list[str] = await attribute(*args)
                self.listed += len(ids)
                return ids

            return listing
        return attribute


BACKENDS = ["memory", "sqlite", "user", *(kind for kind, env in SERVER_ENV.items() if __import__("os").environ.get(env))]


@pytest.mark.parametrize("kind", BACKENDS)
async def test_list_tasks_reads_only_the_callers_tasks(kind: str, tmp_path: Path) -> None:
    backend = make_backend(kind, tmp_path)
    store = CountingStore(backend)
    auth = BearerAuth(tokens={"token-a": "alice", "token-b": "bob"})
    try:
        async with serving(make_flows(), store, auth=auth) as served, httpx.AsyncClient(timeout=30) as http:

            async def list_as_alice() -> tuple[list[str], int, int]:
                store.loads.clear()
                store.listed = 0
                answer = (
                    await http.post(served.rpc_url, json=rpc("ListTasks", {}), headers={**V1, "Authorization": "Bearer token-a"})
                ).json()
                return [t["id"] for t in answer["result"]["tasks"]], sum(store.loads.values()), store.listed

            for text in ("one", "two", "three"):
                answer = await http.post(served.rpc_url, json=send(text), headers={**V1, "Authorization": "Bearer token-a"})
                assert "error" not in answer.json()
            alone = await list_as_alice()
            # Another owner's tasks, stored the way the server stores them.
            bobs = PocketMeshTaskStore(backend)
            bob = ServerCallContext(user=OwnerUser("bob"))
            for n in range(300):
                status = TaskStatus(state=TaskState.TASK_STATE_COMPLETED)
                status.timestamp.GetCurrentTime()
                await bobs.save(Task(id=f"bob-{n}", context_id="c", status=status), bob)
            crowded = await list_as_alice()
    finally:
        drop_backend(backend)

    assert len(alone[0]) == 3 and crowded[0] == alone[0]
    assert alone[1] == crowded[1] == 3  # task records loaded: alice's three, whoever else has tasks
    if not isinstance(backend, SeedInMemoryPersistence):
        assert alone[2] == crowded[2] == 3  # run ids read: listed by prefix


async def test_the_five_method_backend_lists_by_filtering_ids() -> None:
    store = PocketMeshTaskStore(SeedInMemoryPersistence())  # type: ignore[arg-type]
    for owner, count in (("alice", 2), ("bob", 5), ("", 1)):
        for n in range(count):
            await store.save(Task(id=f"{owner}-{n}", context_id="c"), ServerCallContext(user=OwnerUser(owner)) if owner else _anonymous())
    from a2a.types import ListTasksRequest

    listed = await store.list(ListTasksRequest(), ServerCallContext(user=OwnerUser("alice")))
    assert sorted(t.id for t in listed.tasks) == ["alice-0", "alice-1"]
    anonymous = await store.list(ListTasksRequest(), _anonymous())
    assert [t.id for t in anonymous.tasks] == ["-0"]


def _anonymous() -> ServerCallContext:
    from a2a.auth.user import UnauthenticatedUser

    return ServerCallContext(user=UnauthenticatedUser())


async def test_built_in_backends_list_runs_by_prefix(tmp_path: Path) -> None:
    names = ["a2a-task:alice:1", "a2a-task:alice:2", "a2a-task:alicia:1", "a2a-task:bob:1", "plain", "a2a-task:\U0010ffff:x"]
    for backend in (InMemoryPersistence(), SQLitePersistence(tmp_path / "p.sqlite")):
        for name in names:
            await backend.save_run(name, {"n": name}, {})
        assert await backend.list_runs_with_prefix("a2a-task:alice:") == ["a2a-task:alice:1", "a2a-task:alice:2"]
        assert await backend.list_runs_with_prefix("a2a-task:\U0010ffff") == ["a2a-task:\U0010ffff:x"]
        assert await backend.list_runs_with_prefix("") == names
