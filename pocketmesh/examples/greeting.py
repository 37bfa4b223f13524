"""A conversational greeting agent: it learns your name, chats, and says goodbye on "bye".

Serve it with ``pocketmesh serve pocketmesh.examples.greeting:flows``.
"""

from __future__ import annotations

from typing import Any

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode, is_text_part

FAREWELLS = frozenset({"bye", "goodbye", "quit", "exit"})


class GreetNode(A2ABaseNode):
    """Takes the first message as the user's name and greets them."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        text = next((p["text"] for p in self.get_incoming_parts(shared) if is_text_part(p)), "")
        shared["userName"] = text.strip() or "User"
        return str(shared["userName"])

    async def execute(self, name: str, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        return f"Hello, {name}! What's on your mind?"

    async def finalize(self, shared: dict[str, Any], prep: Any, reply: str, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part(reply)])
        return "input-required"


class FollowUpNode(A2ABaseNode):
    """Answers each later message, until the user says goodbye."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        history = shared.get("__a2a_history") or []
        latest = history[-1] if history else {}
        return next((p["text"] for p in latest.get("parts", []) if is_text_part(p)), "")

    async def execute(self, user_input: str, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        if user_input.strip().lower().rstrip("!.") in FAREWELLS:
            return f"Goodbye, {shared.get('userName', 'User')}!"
        return f'Got it: "{user_input}". Anything else?'

    async def finalize(self, shared: dict[str, Any], prep: str, reply: str, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part(reply)])
        return "complete" if reply.startswith("Goodbye") else "input-required"


def build_flow() -> Flow:
    """Greet, then follow up on every further message (the follow-up re-enters itself)."""
    greet = GreetNode()
    greet - "input-required" >> FollowUpNode()
    return Flow(greet, name="greeting")


flows = {"greeting": build_flow()}
