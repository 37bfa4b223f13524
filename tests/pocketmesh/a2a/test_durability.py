"""Restarts, redelivery and concurrency, over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from pocketmesh import Flow, SQLitePersistence, load_run_record
from pocketmesh.a2a import A2ABaseNode, create_a2a_client

from .conftest import Served, free_port, make_flows, serving


async def test_greeting_survives_a_server_restart(tmp_path: Path) -> None:
    db = tmp_path / "agent.sqlite"
    port = free_port()
    async with serving(make_flows(), SQLitePersistence(db), port=port) as served:
        async with await create_a2a_client(served.base_url) as client:
            first = await client.send_message("Carol", skill="greeting")
    assert first.state == "input-required"
    # A new process would see only the file: a fresh backend and fresh flows.
    async with serving(make_flows(), SQLitePersistence(db), port=port) as served:
        async with await create_a2a_client(served.base_url) as client:
            second = await client.send_message("tea", task_id=first.task_id)
            third = await client.send_message("bye", task_id=first.task_id)
    assert (second.state, second.text) == ("input-required", 'Got it: "tea". Anything else?')
    assert (third.state, third.text) == ("completed", "Goodbye, Carol!")


async def test_redelivered_message_is_applied_once(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        first = await client.send_message("a", skill="collect")
        message_id = str(uuid.uuid4())
        once = await client.send_message("b", task_id=first.task_id, message_id=message_id)
        again = await client.send_message("b", task_id=first.task_id, message_id=message_id)
        streamed = [e async for e in client.send_message_stream("b", task_id=first.task_id, message_id=message_id)]
    assert (once.text, again.text) == ("seen 2", "seen 2")
    assert again.state == "input-required"
    assert [e.kind for e in streamed] == ["task"] and streamed[0].state == "input-required"
    record = await load_run_record(server.persistence, first.task_id)
    assert record is not None
    assert record.shared["seen"] == ["a", "b"] and record.shared["runs"] == 2
    assert [m["parts"][0]["text"] for m in again.history if m["role"] == "user"] == ["a", "b"]


async def test_concurrent_messages_on_one_task_are_serialized(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        first = await client.send_message("m0", skill="collect")
        replies = await asyncio.gather(*(client.send_message(f"m{i}", task_id=first.task_id) for i in range(1, 9)))
        task = await client.get_task(first.task_id)
    assert sorted(r.text for r in replies) == sorted(f"seen {n}" for n in range(2, 10))
    record = await load_run_record(server.persistence, first.task_id)
    assert record is not None
    assert sorted(record.shared["seen"]) == sorted(f"m{i}" for i in range(9))
    user_texts = [m["parts"][0]["text"] for m in task.history if m["role"] == "user"]
    assert sorted(user_texts) == sorted(f"m{i}" for i in range(9))
    assert user_texts == record.shared["seen"][: len(user_texts)]


async def test_two_tasks_streaming_artifacts_concurrently_never_cross(server: Served) -> None:
    words = {name: [f"{name}{i}" for i in range(12)] for name in ("left", "right")}

    async def stream(name: str) -> list[str]:
        async with await create_a2a_client(server.base_url) as client:
            events = [e async for e in client.send_message_stream(" ".join(words[name]), skill="chunks")]
        task_ids = {e.task_id for e in events}
        assert len(task_ids) == 1
        artifacts = [e.artifact for e in events if e.artifact is not None]
        assert {a["artifactId"] for a in artifacts} == {f"words-{task_ids.pop()}"}
        return [a["parts"][0]["text"] for a in artifacts]

    left, right = await asyncio.gather(stream("left"), stream("right"))
    assert left == words["left"]
    assert right == words["right"]


async def test_different_tasks_run_in_parallel() -> None:
    runs = 4
    inside: list[str] = []
    all_in = asyncio.Event()

    class Meet(A2ABaseNode):
        """Waits inside its turn until every task's turn is inside its own at the same time."""

        async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> int:
            inside.append(shared["input"])
            if len(inside) == runs:
                all_in.set()
            await all_in.wait()  # tasks run one after another would never get here
            return len(inside)

        async def finalize(self, shared: dict[str, Any], prep: Any, seen: int, params: dict[str, Any]) -> None:
            self.set_final_response_parts(shared, [self.create_text_part(f"met {seen}")])

    async with serving({"meet": Flow(Meet())}) as served, await create_a2a_client(served.base_url) as client:
        try:
            replies = await asyncio.wait_for(
                asyncio.gather(*(client.send_message(f"task {n}", skill="meet") for n in range(runs))), 30
            )
        finally:
            all_in.set()  # a turn left waiting would keep the server from stopping
    assert sorted(inside) == [f"task {n}" for n in range(runs)]
    assert [r.text for r in replies] == [f"met {runs}"] * runs
    assert len({r.task_id for r in replies}) == runs