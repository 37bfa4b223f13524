"""a2a_agent / remote_agent: conversations with agents in-process and over HTTP."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn

from pocketmesh import Flow, InMemoryPersistence
from pocketmesh.a2a import A2ABaseNode, create_a2a_app, generate_agent_card
from pocketmesh.examples import greeting
from pocketmesh_testing.conversations.fixtures import a2a_agent, remote_agent  # noqa: F401 - fixtures
from pocketmesh_testing.conversations.agents import InProcessAgent, RemoteAgent, Reply

GATE: dict[str, asyncio.Event] = {}


class GatedChunksNode(A2ABaseNode):
    """Emits one chunk, then waits until the test has seen it before emitting the next."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        await self.emit_artifact({"artifactId": "tokens", "name": "tokens", "parts": [self.create_text_part("first")]})
        await asyncio.wait_for(GATE["seen"].wait(), 5)
        await self.emit_artifact({"artifactId": "tokens", "name": "tokens", "parts": [self.create_text_part(" second")]})
        return "done"

    async def finalize(self, shared: dict[str, Any], prep: Any, result: str, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part(result)])
        return "complete"


async def test_a_conversation_exposes_state_text_task_and_shared(a2a_agent: Any) -> None:
    agent: InProcessAgent = a2a_agent(greeting.flows)
    conv = agent.conversation(skill="greeting")
    first = await conv.send("Dana")
    assert (first.state, first.text) == ("input-required", "Hello, Dana! What's on your mind?")
    assert first.shared["userName"] == "Dana" and first.shared["__a2a_task_id"] == first.task_id
    last = await conv.send([{"kind": "text", "text": "bye"}])
    assert (last.state, last.text, last.task_id) == ("completed", "Goodbye, Dana!", first.task_id)
    assert [e.sent_text for e in conv.exchanges] == ["Dana", "bye"]


async def test_streaming_in_process_delivers_each_event_as_it_happens(a2a_agent: Any) -> None:
    # The node waits for the test to see its first chunk: a buffered transport would deadlock.
    GATE["seen"] = asyncio.Event()
    agent = a2a_agent({"gated": Flow(GatedChunksNode())})
    client = await agent.client()
    kinds = []
    async for event in client.send_message_stream("go"):
        kinds.append(event.kind)
        if event.kind == "artifact-update" and event.text == "first":
            GATE["seen"].set()
    assert kinds[0] == "task" and kinds.count("artifact-update") == 2 and kinds[-1] == "status-update"


async def test_stream_returns_a_reply_built_from_the_events(a2a_agent: Any) -> None:
    GATE["seen"] = asyncio.Event()
    GATE["seen"].set()
    conv = a2a_agent({"gated": Flow(GatedChunksNode())}).conversation()
    reply = await conv.stream("go")
    assert isinstance(reply, Reply)
    assert reply.chunks == ["first", " second"] and reply.chunks_of("tokens") == reply.chunks
    assert [e.kind for e in reply.events][0] == "task" and reply.events[-1].kind == "status-update"
    assert reply.state == "completed" and reply.text == "done"
    assert reply.artifacts == [{"artifactId": "tokens", "name": "tokens", "parts": [
        {"kind": "text", "text": "first"}, {"kind": "text", "text": " second"}]}]
    assert reply.shared["__a2a_skill_id"] == "gated"


async def test_a_persistence_given_to_a2a_agent_holds_the_runs(a2a_agent: Any) -> None:
    store = InMemoryPersistence()
    reply = await a2a_agent(greeting.flows, persistence=store).conversation().send("Kim")
    assert reply.task_id in await store.list_runs()


def _free_port() -> int:
    return _free_ports(1)[0]


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (probed together, so no two are the same)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


async def test_remote_agent_talks_to_a_live_server_through_its_card(remote_agent: Any) -> None:
    port, store = _free_port(), InMemoryPersistence()
    card = generate_agent_card(name="greeter", url=f"http://127.0.0.1:{port}/a2a", skills=["greeting"])
    app = create_a2a_app(greeting.flows, agent_card=card, persistence=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        agent: RemoteAgent = remote_agent(f"http://127.0.0.1:{port}")
        assert await agent.skills() == ["greeting"]
        reply = await agent.conversation(skill="greeting").send("Ola")
        assert (reply.state, reply.text) == ("input-required", "Hello, Ola! What's on your mind?")
        with pytest.raises(AttributeError, match="persistence="):
            reply.shared
        with_store = remote_agent(f"http://127.0.0.1:{port}", persistence=store)
        assert (await with_store.conversation().send("Ida")).shared["userName"] == "Ida"
        await agent.aclose()
        await with_store.aclose()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("transport", [None, "JSONRPC", "HTTP+JSON", "GRPC"])
async def test_remote_agent_talks_over_the_transport_asked_for(remote_agent: Any, transport: str | None) -> None:
    port, grpc_port = _free_ports(2)
    card = generate_agent_card(name="greeter", url=f"http://127.0.0.1:{port}/a2a", skills=["greeting"])
    app = create_a2a_app(greeting.flows, agent_card=card, persistence=InMemoryPersistence(), grpc_port=grpc_port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        agent: RemoteAgent = remote_agent(f"http://127.0.0.1:{port}", transport=transport)
        conv = agent.conversation(skill="greeting")
        first = await conv.send("Ola")
        streamed = await conv.stream("bye")
        assert (await agent.client()).transport == (transport or "JSONRPC")  # the card lists JSON-RPC first
        assert f"over {transport or 'JSONRPC'}" in agent.describe()
        assert (first.state, first.text) == ("input-required", "Hello, Ola! What's on your mind?")
        assert (streamed.state, streamed.text, streamed.task_id) == ("completed", "Goodbye, Ola!", first.task_id)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_a2a_agent_speaks_http_json_in_process_but_not_grpc(a2a_agent: Any) -> None:
    agent: InProcessAgent = a2a_agent(greeting.flows, transport="HTTP+JSON")
    reply = await agent.conversation(skill="greeting").send("Dana")
    assert (await agent.client()).transport == "HTTP+JSON"
    assert (reply.state, reply.shared["userName"]) == ("input-required", "Dana")
    with pytest.raises(ValueError, match="gRPC needs one; use transport='JSONRPC' or 'HTTP\\+JSON'"):
        a2a_agent(greeting.flows, transport="GRPC")
