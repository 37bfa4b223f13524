"""The conformance-kit example agent: what each messageId prefix makes it do."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.types import AgentCard

from pocketmesh.a2a import generate_agent_card
from pocketmesh.examples import tck

# Conversations with an example agent: `pocketmesh gate` runs them with the scenarios.
pytestmark = pytest.mark.scenario


async def test_each_prefix_gets_its_answer(a2a_agent: Any) -> None:
    agent = a2a_agent(tck.flows)
    message = await agent.conversation().send("x", message_id="tck-message-response-1")
    rejected = await agent.conversation().send("x", message_id="tck-reject-task-1")
    data = await agent.conversation().send("x", message_id="tck-artifact-data-1")
    conv = agent.conversation()
    asked = await conv.send("x", message_id="tck-input-required-1")
    done = await conv.send("y", message_id="tck-complete-task-1")
    other = await agent.conversation().send("x", message_id="something-else")
    assert (message.task_id, message.state, message.text) == ("", "completed", "Direct message response")
    assert (rejected.state, rejected.text) == ("rejected", "rejected")
    assert data.artifacts[0]["parts"] == [{"kind": "data", "data": {"key": "value", "count": 42}}]
    assert (asked.state, done.state, done.text, done.task_id) == ("input-required", "completed", "Hello from TCK", asked.task_id)
    assert other.text == "Unhandled messageId prefix: something-else"


async def test_streams_announce_the_task_then_work_then_end(a2a_agent: Any) -> None:
    reply = await a2a_agent(tck.flows).conversation().stream("x", message_id="tck-stream-artifact-chunked-1")
    events = reply.events
    assert [(e.kind, e.state) for e in events] == [
        ("task", "submitted"),
        ("status-update", "working"),
        ("status-update", "working"),
        ("artifact-update", None),
        ("artifact-update", None),
        ("status-update", "completed"),
    ]
    assert reply.chunks == ["chunk-1 ", "chunk-2"] and [e.append for e in events[3:5]] == [False, True]


def test_the_extended_card_adds_a_skill_to_the_public_one() -> None:
    public = generate_agent_card(name="tck", url="http://127.0.0.1:9999/a2a", skills=["tck"])
    extended = tck.extended_card(public)
    assert isinstance(extended, AgentCard)
    assert [s.id for s in extended.skills] == ["tck", "tck-extended"] and [s.id for s in public.skills] == ["tck"]


async def test_artifacts_by_prefix_and_a_lingering_task(a2a_agent: Any) -> None:
    agent = a2a_agent({"tck": tck.build_flow(linger_seconds=0)})  # the TCK's own agent lingers 4 s
    text = await agent.conversation().send("x", message_id="tck-artifact-text-1")
    inline = await agent.conversation().send("x", message_id="tck-artifact-file-1")
    linked = await agent.conversation().send("x", message_id="tck-artifact-file-url-1")
    lingered = await agent.conversation().send("x", message_id="test-resubscribe-message-id-1")
    assert text.artifact_text == "Generated text content"
    assert [p["file"]["name"] for p in inline.artifacts[0]["parts"]] == ["output.txt"]
    assert linked.artifacts[0]["parts"][0]["file"]["uri"] == "https://example.com/output.txt"
    assert lingered.state == "completed" and lingered.artifacts == []
