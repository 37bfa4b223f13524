"""The A2A layer over real HTTP, through the official SDK client (A2A 1.0 wire)."""

from __future__ import annotations

import pytest
from a2a.utils.errors import InvalidParamsError

from pocketmesh import load_run_record
from pocketmesh.a2a import create_a2a_client

from .conftest import Served


async def test_blocking_send_completes_with_the_reply(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        reply = await client.send_message("hello")
    assert reply.state == "completed"
    assert reply.text == "echo: hello"
    assert [m["role"] for m in reply.history] == ["user"]
    record = await load_run_record(server.persistence, reply.task_id)
    assert record is not None and record.status == "completed"
    assert record.shared["__a2a_skill_id"] == "echo"
    assert record.shared["__a2a_incoming_message"]["parts"] == [{"kind": "text", "text": "hello"}]


async def test_client_accepts_the_rpc_url_and_parts(server: Served) -> None:
    async with await create_a2a_client(server.rpc_url) as client:
        reply = await client.send_message([{"kind": "text", "text": "parts"}], skill="shout")
    assert (reply.state, reply.text) == ("completed", "PARTS")


async def test_streaming_send_emits_task_working_artifacts_and_final_status(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        events = [e async for e in client.send_message_stream("one two three", skill="chunks")]
    kinds = [(e.kind, e.state) for e in events]
    assert kinds == [
        ("task", "submitted"),
        ("status-update", "working"),
        ("artifact-update", None),
        ("artifact-update", None),
        ("artifact-update", None),
        ("status-update", "completed"),
    ]
    assert events[1].metadata["pocketmesh"]["node"] == "ChunkNode"
    artifacts = events[2:5]
    assert [a.text for a in artifacts] == ["one", "two", "three"]
    assert [a.append for a in artifacts] == [False, True, True]
    assert len({a.artifact["artifactId"] for a in artifacts}) == 1
    assert events[-1].text == "3 words"
    async with await create_a2a_client(server.base_url) as client:
        task = await client.get_task(events[0].task_id)
    assert [p["text"] for p in task.artifacts[0]["parts"]] == ["one", "two", "three"]
    # Printed, a view says what a reader looks for, not the whole protobuf behind it.
    assert repr(task) == (f"TaskView(task_id={task.task_id!r}, state='completed', text='3 words', parts=1, "
                          f"artifacts=1, history=1)")
    assert repr(events[3]) == (f"StreamEvent(kind='artifact-update', task_id={task.task_id!r}, "
                               f"artifact={artifacts[0].artifact['artifactId']!r}, append=True, text='two')")
    assert repr(events[-1]).startswith("StreamEvent(kind='status-update', task_id=") and "state='completed'" in repr(events[-1])


async def test_get_and_cancel(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        first = await client.send_message("a", skill="collect")
        assert first.state == "input-required"
        got = await client.get_task(first.task_id)
        assert (got.state, got.text) == ("input-required", "seen 1")
        canceled = await client.cancel_task(first.task_id)
        assert canceled.state == "canceled"
        assert (await client.get_task(first.task_id)).state == "canceled"
    record = await load_run_record(server.persistence, first.task_id)
    assert record is not None and record.status == "canceled"


async def test_three_turn_greeting_conversation_ends_completed(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        one = await client.send_message("Alice", skill="greeting")
        two = await client.send_message("the weather", task_id=one.task_id)
        three = await client.send_message("bye", task_id=one.task_id)
    assert [(r.state, r.text) for r in (one, two, three)] == [
        ("input-required", "Hello, Alice! What's on your mind?"),
        ("input-required", 'Got it: "the weather". Anything else?'),
        ("completed", "Goodbye, Alice!"),
    ]
    assert len({one.context_id, two.context_id, three.context_id}) == 1
    record = await load_run_record(server.persistence, one.task_id)
    assert record is not None
    history = record.shared["__a2a_history"]
    assert [(m["role"], m["parts"][0]["text"]) for m in history] == [
        ("user", "Alice"),
        ("agent", "Hello, Alice! What's on your mind?"),
        ("user", "the weather"),
        ("agent", 'Got it: "the weather". Anything else?'),
        ("user", "bye"),
    ]
    assert all(m["taskId"] == one.task_id and m["contextId"] == one.context_id for m in history)


async def test_skill_routing_uses_metadata_then_the_tasks_skill(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        assert (await client.send_message("x")).text == "echo: x"
        assert (await client.send_message("x", skill="shout")).text == "X"
        first = await client.send_message("a", skill="collect")
        second = await client.send_message("b", task_id=first.task_id)
    assert second.text == "seen 2"


async def test_unknown_skill_is_invalid_params_and_persists_nothing(server: Served) -> None:
    before = await server.persistence.list_runs()
    async with await create_a2a_client(server.base_url) as client:
        with pytest.raises(InvalidParamsError, match="unknown skill 'nope'"):
            await client.send_message("x", skill="nope")
        with pytest.raises(InvalidParamsError, match="unknown skill"):
            [e async for e in client.send_message_stream("x", skill="nope")]
    assert await server.persistence.list_runs() == before


async def test_failing_flow_fails_the_task_with_an_error_id_and_not_the_error_text(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        reply = await client.send_message("x", skill="boom")
    assert reply.state == "failed"
    assert "error id" in reply.text
    assert "exploded" not in reply.text
