"""Served flows behave as in-process ones: blocking synchronous nodes, plain dict artifacts,
cards that describe each flow and draw no SDK warning."""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from typing import Any

import httpx
import pytest

from pocketmesh import BaseNode, Flow
from pocketmesh.a2a import A2ABaseNode, BearerAuth, create_a2a_app, create_a2a_client, generate_agent_card
from pocketmesh.a2a.card import flow_description, skills_for_flows

from .conftest import EchoNode, free_port, serving


class Blocks(BaseNode):
    """A synchronous node that holds its thread until the test lets it go."""

    def __init__(self, started: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.started, self.release = started, release

    def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> bool:
        self.started.set()
        return self.release.wait(timeout=10)


async def test_a_served_agent_keeps_answering_while_a_sync_node_blocks() -> None:
    started, release = threading.Event(), threading.Event()
    async with serving({"block": Flow(Blocks(started, release)), "echo": Flow(EchoNode())}) as served:
        async with await create_a2a_client(served.base_url) as client:
            blocked = asyncio.ensure_future(client.send_message("wait", skill="block"))
            try:
                while not started.is_set():
                    await asyncio.sleep(0.001)
                # The blocking node holds a worker thread; a node run on the event loop would hold
                # the server too, and this answer could not come before the node is released.
                answers = [await client.send_message(f"ping {i}", skill="echo") for i in range(3)]
                assert not release.is_set() and not blocked.done()
            finally:
                release.set()
            done = await blocked
    assert [a.text for a in answers] == ["echo: ping 0", "echo: ping 1", "echo: ping 2"]
    assert done.state == "completed"


class EmitsPlainDicts(A2ABaseNode):
    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        await self.emit_artifact({"score": 0.5, "labels": ["a", "b"], "nested": {"ok": True}})
        await self.emit_artifact({"artifactId": "words", "parts": [self.create_text_part("hello")]})

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        self.set_final_response_parts(shared, [self.create_text_part("done")])


async def test_a_plain_dict_artifact_reaches_a_served_client_as_a_data_part() -> None:
    flow = Flow(EmitsPlainDicts())
    in_process: list[Any] = []
    local = await flow.run({}, on_artifact=in_process.append)
    assert local.status == "completed"
    assert in_process[0] == {"score": 0.5, "labels": ["a", "b"], "nested": {"ok": True}}  # unchanged in-process
    async with serving({"dicts": flow}) as served:
        async with await create_a2a_client(served.base_url) as client:
            events = [e async for e in client.send_message_stream("go")]
            reply = await client.send_message("again")
    assert events[-1].state == "completed" and reply.state == "completed"
    streamed = [e.artifact for e in events if e.kind == "artifact-update"]
    assert streamed[0] is not None and streamed[0]["parts"] == [
        {"kind": "data", "data": {"score": 0.5, "labels": ["a", "b"], "nested": {"ok": True}}}
    ]
    assert streamed[1] is not None and streamed[1]["artifactId"] == "words"
    assert [a["parts"][0]["kind"] for a in reply.artifacts] == ["data", "text"]
    assert reply.artifacts[0]["parts"][0]["data"]["labels"] == ["a", "b"]


class EmitsText(A2ABaseNode):
    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        await self.emit_artifact("just a string")


async def test_an_artifact_that_is_no_dict_fails_with_a_message_saying_what_an_artifact_is() -> None:
    async with serving({"text": Flow(EmitsText())}, expose_errors=True) as served:
        async with await create_a2a_client(served.base_url) as client:
            reply = await client.send_message("go")
    assert reply.state == "failed"
    assert "an artifact is a dict" in reply.text and "'just a string'" in reply.text


class Greeter(Flow):
    """Greets people by name.

    More detail that is not part of the one-line description.
    """


class Undocumented(Flow):
    pass


def test_a_flow_is_described_by_its_own_docstring_description_or_name_never_flows() -> None:
    plain = Flow(EchoNode())
    named = Flow(EchoNode(), name="orders")
    described = Flow(EchoNode())
    described.description = "Takes orders."  # type: ignore[attr-defined]
    assert flow_description(Greeter(EchoNode()), "greet") == "Greets people by name."
    assert flow_description(Undocumented(EchoNode()), "x") == "Undocumented"
    assert flow_description(named, "x") == "orders"
    assert flow_description(described, "x") == "Takes orders."
    assert flow_description(plain, "echo") == "echo"
    flow_doc = (Flow.__doc__ or "").strip().splitlines()[0]
    assert all(flow_doc not in s.description for s in skills_for_flows({"a": plain, "b": named}))


async def test_the_readme_card_gets_one_skill_per_flow_and_draws_no_sdk_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    flows = {"greet": Greeter(EchoNode()), "orders": Flow(EchoNode(), name="orders")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        port = free_port()  # the README's card, on a port free here
        card = generate_agent_card(name="greeter", url=f"http://127.0.0.1:{port}/a2a", version="1.0.0")
        auth = BearerAuth(tokens={"secret-token": "team-a"})
        async with serving(flows, port=port, card=card, auth=auth) as served:
            async with httpx.AsyncClient(timeout=10) as http:
                served_card = (await http.get(f"{served.base_url}/.well-known/agent-card.json")).json()
            async with await create_a2a_client(served.base_url, auth_token="secret-token") as client:
                reply = await client.send_message("hi", skill="orders")
                streamed = [e async for e in client.send_message_stream("hi", skill="greet")]
    assert reply.state == "completed" and streamed[-1].state == "completed"
    assert [(s["id"], s["description"]) for s in served_card["skills"]] == [
        ("greet", "Greets people by name."),
        ("orders", "orders"),
    ]
    complaints = [r.getMessage() for r in caplog.records if "spec-compliant" in r.getMessage()]
    assert complaints == []
    assert [str(w.message) for w in caught if "spec-compliant" in str(w.message)] == []


def test_a_card_missing_required_fields_is_refused_naming_them() -> None:
    from a2a.types import AgentCard

    with pytest.raises(ValueError, match="version") as caught:
        create_a2a_app({"echo": Flow(EchoNode())}, agent_card=AgentCard(name="bare", description="d"))
    assert "generate_agent_card" in str(caught.value)


def test_get_incoming_text_joins_the_text_parts() -> None:
    node = EchoNode()
    shared = {
        "__a2a_incoming_message": {
            "parts": [{"kind": "text", "text": "one"}, {"kind": "data", "data": {"x": 1}}, {"kind": "text", "text": "two"}]
        }
    }
    assert node.get_incoming_text(shared) == "one\ntwo"
    assert node.get_incoming_text({}) == ""
