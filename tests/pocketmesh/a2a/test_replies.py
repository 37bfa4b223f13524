"""Flows decide how a turn ends: a bare message (no task), ``rejected``, ``auth-required``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from a2a.utils.errors import UnsupportedOperationError

from pocketmesh import Flow, load_run_record
from pocketmesh.a2a import A2ABaseNode, create_a2a_client

from .conftest import Served, free_port, serving

TRANSPORTS = ["JSONRPC", "HTTP+JSON", "GRPC"]


class Router(A2ABaseNode):
    """Answers small talk with a bare message, refuses, asks for credentials, or passes work on."""

    may_reply_with_message = True

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0
        self.gate: asyncio.Event | None = None

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        self.runs += 1
        if shared["input"] == "wait" and self.gate is not None:
            await self.gate.wait()

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        text = shared["input"]
        if text == "hi":
            return self.reply_with_message(shared, "hello there")
        if text == "forbidden":
            return self.reject(shared, "I will not do that")
        if text == "secret":
            return self.require_auth(shared, "sign in first")
        if text == "more":
            self.set_final_response_parts(shared, [self.create_text_part("tell me more")])
            return "input-required"
        if text in ("work", "wait"):
            return "work"
        self.set_final_response_parts(shared, [self.create_text_part(f"welcome, {text}")])
        return "complete"


class Work(A2ABaseNode):
    """Emits an artifact, then answers with a message, which can only complete the task now."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        await self.emit_artifact({"artifactId": "result", "parts": [self.create_text_part("done")]})

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        return self.reply_with_message(shared, "worked")


class Plain(A2ABaseNode):
    """Asks for a message reply without having opted in: its task is already announced."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        return self.reply_with_message(shared, "plain")


class Setup:
    def __init__(self) -> None:
        self.router = Router()
        self.router - "work" >> Work()
        self.flows = {"router": Flow(self.router), "plain": Flow(Plain())}


@pytest.fixture
def setup() -> Setup:
    return Setup()


@pytest_asyncio.fixture
async def server(setup: Setup) -> AsyncIterator[Served]:
    async with serving(setup.flows, grpc_port=free_port()) as served:
        yield served


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_flow_answers_with_a_bare_message(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        reply = await client.send_message("hi")
        events = [e async for e in client.send_message_stream("hi")]
        tasks = await client.list_tasks()
    assert (reply.kind, reply.state, reply.text, reply.task_id) == ("message", "completed", "hello there", "")
    assert [(e.kind, e.text) for e in events] == [("message", "hello there")]
    assert tasks.tasks == []
    assert not [r for r in await server.persistence.list_runs() if r.startswith("a2a-task:")]


async def test_a_message_reply_sent_again_is_answered_without_running_again(server: Served, setup: Setup) -> None:
    context_id, message_id = f"ctx-{uuid.uuid4()}", f"m-{uuid.uuid4()}"
    replies = []
    for transport in TRANSPORTS:
        async with await create_a2a_client(server.base_url, transport=transport) as client:
            replies.append(await client.send_message("hi", context_id=context_id, message_id=message_id))
    assert [(r.kind, r.text) for r in replies] == [("message", "hello there")] * 3
    assert setup.router.runs == 1


async def test_once_the_task_is_announced_a_message_reply_completes_it(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        worked = await client.send_message("work")
        plain = await client.send_message("x", skill="plain")
        events = [e async for e in client.send_message_stream("work")]
    assert (worked.kind, worked.state, worked.text) == ("task", "completed", "worked")
    assert [a["parts"] for a in worked.artifacts] == [[{"kind": "text", "text": "done"}]]
    assert (plain.kind, plain.state, plain.text) == ("task", "completed", "plain")
    kinds = [(e.kind, e.state, e.metadata.get("pocketmesh", {}).get("node")) for e in events]
    assert kinds == [
        ("task", "submitted", None),
        ("status-update", "working", "Router"),  # held until Router chose a task, then sent in order
        ("status-update", "working", "Work"),
        ("artifact-update", None, None),
        ("status-update", "completed", None),
    ]


async def test_a_flow_rejects_a_task(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        reply = await client.send_message("forbidden")
        with pytest.raises(UnsupportedOperationError):
            await client.send_message("please", task_id=reply.task_id)
        stored = await client.get_task(reply.task_id)
    assert (reply.state, reply.text) == ("rejected", "I will not do that")
    assert stored.state == "rejected"
    record = await load_run_record(server.persistence, reply.task_id)
    assert record is not None and record.status == "completed"


async def test_a_flow_asks_for_credentials_and_resumes(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        asked = await client.send_message("secret")
        more = await client.send_message("more", task_id=asked.task_id)
        resumed = await client.send_message("token-123", task_id=asked.task_id)
    assert (asked.state, asked.text) == ("auth-required", "sign in first")
    assert (more.state, more.text) == ("input-required", "tell me more")  # each turn chooses afresh
    assert (resumed.state, resumed.text, resumed.task_id) == ("completed", "welcome, token-123", asked.task_id)


async def test_a_caller_who_asks_for_the_task_at_once_gets_it_while_the_first_node_runs(server: Served, setup: Setup) -> None:
    setup.router.gate = asyncio.Event()
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {
            "message": {"role": "ROLE_USER", "messageId": str(uuid.uuid4()), "parts": [{"text": "wait"}]},
            "configuration": {"returnImmediately": True},
        },
    }
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(server.rpc_url, json=body, headers={"A2A-Version": "1.0"})
    task = response.json()["result"]["task"]
    assert task["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
    async with await create_a2a_client(server.base_url) as client:
        events = client.subscribe(task["id"])
        assert (await anext(events)).task_id == task["id"]
        setup.router.gate.set()
        rest = [e async for e in events]
    assert (rest[-1].state, rest[-1].text) == ("completed", "worked")
