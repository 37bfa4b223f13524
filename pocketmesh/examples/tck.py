"""The agent the A2A conformance kit (a2aproject/a2a-tck) tests: behaviour chosen by messageId prefix.

Each TCK scenario sends a message whose ``messageId`` starts with a known prefix and expects the
agent to answer a certain way (``scenarios/*.feature`` in the TCK). ``Triage``, the first node,
reads the prefix and answers at once — with a bare message (``tck-message-response``), a
rejection (``tck-reject-task``), a question (``tck-input-required``) or a reply — or hands the
turn to ``Produce`` (artifacts) or ``Linger`` (a long task to resubscribe to). Serve it with
every transport, push notifications and the extended card::

    pocketmesh serve pocketmesh.examples.tck:flows --port 9999 --grpc-port 10000 \\
        --push-allow-host localhost --extended-card pocketmesh.examples.tck:extended_card

``benchmarks/tck/run.sh`` does that and runs the kit against it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from a2a.types import AgentCard, AgentSkill

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode

LINGER_SECONDS = 4.0
"""How long ``test-resubscribe-message-id`` tasks run: twice the TCK's streaming timeout."""

_TEXT_ARTIFACTS = {
    "tck-stream-artifact-text": "Streamed text content",
    "tck-stream-ordering-001": "Ordered output",
    "tck-stream-001": "Stream hello from TCK",
    "tck-stream-003": "Stream task lifecycle",
    "tck-artifact-text": "Generated text content",
}
_PRODUCED = (*_TEXT_ARTIFACTS, "tck-stream-artifact-chunked", "tck-stream-artifact-file", "tck-artifact-file", "tck-artifact-data")


def _message_id(node: A2ABaseNode, shared: dict[str, Any]) -> str:
    return str((node.get_incoming_message(shared) or {}).get("messageId") or "")


class Triage(A2ABaseNode):
    """Answers what needs no work at once; passes the rest on ("produce", "linger")."""

    may_reply_with_message = True

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return _message_id(self, shared)

    async def finalize(self, shared: dict[str, Any], mid: str, result: Any, params: dict[str, Any]) -> str:
        if mid.startswith("tck-message-response"):
            return self.reply_with_message(shared, "Direct message response")
        if mid.startswith("tck-reject-task"):
            return self.reject(shared, "rejected")
        if mid.startswith("tck-input-required"):
            self.set_final_response_parts(shared, [self.create_text_part("Input required")])
            return "input-required"
        if mid.startswith("test-resubscribe-message-id"):
            return "linger"
        if mid.startswith(_PRODUCED):
            return "produce"
        if mid.startswith("tck-complete-task"):
            self.set_final_response_parts(shared, [self.create_text_part("Hello from TCK")])
        elif not mid.startswith("tck-stream-002"):
            self.set_final_response_parts(shared, [self.create_text_part(f"Unhandled messageId prefix: {mid}")])
        return "complete"


class Produce(A2ABaseNode):
    """Emits the artifact the prefix asks for."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return _message_id(self, shared)

    async def execute(self, mid: str, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        if mid.startswith("tck-stream-artifact-chunked"):
            await self.emit_artifact({"artifactId": "chunked", "parts": [self.create_text_part("chunk-1 ")]})
            await self.emit_artifact({"artifactId": "chunked", "parts": [self.create_text_part("chunk-2")], "lastChunk": True})
        elif mid.startswith("tck-artifact-file-url"):
            part = self.create_file_part(uri="https://example.com/output.txt", name="output.txt", mime_type="text/plain")
            await self.emit_artifact({"parts": [part]})
        elif mid.startswith(("tck-artifact-file", "tck-stream-artifact-file")):
            part = self.create_file_part(bytes=b"tck", name="output.txt", mime_type="text/plain")
            await self.emit_artifact({"parts": [part]})
        elif mid.startswith("tck-artifact-data"):
            await self.emit_artifact({"parts": [self.create_data_part({"key": "value", "count": 42})]})
        else:
            text = next(t for prefix, t in _TEXT_ARTIFACTS.items() if mid.startswith(prefix))
            await self.emit_artifact({"parts": [self.create_text_part(text)]})


class Linger(A2ABaseNode):
    """Works for ``seconds`` (:data:`LINGER_SECONDS`), long enough for a client to subscribe to the task."""

    def __init__(self, seconds: float = LINGER_SECONDS) -> None:
        super().__init__()
        self.seconds = seconds

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        await asyncio.sleep(self.seconds)


def build_flow(linger_seconds: float = LINGER_SECONDS) -> Flow:
    """Triage, then Produce or Linger (for ``linger_seconds``)."""
    triage = Triage()
    triage - "produce" >> Produce()
    triage - "linger" >> Linger(linger_seconds)
    return Flow(triage, name="tck")


flows = {"tck": build_flow()}


def extended_card(public: AgentCard) -> AgentCard:
    """The public card, plus a skill only authenticated callers are told about."""
    card = AgentCard()
    card.CopyFrom(public)
    card.description = f"{public.description} (extended card)"
    card.skills.append(
        AgentSkill(id="tck-extended", name="TCK extended", description="Listed on the extended card only.", tags=["tck"])
    )
    return card
