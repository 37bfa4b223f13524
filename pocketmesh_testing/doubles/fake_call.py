"""``FakeCall``: one request the fake LLM received, read the same way for every wire format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pocketmesh_testing.doubles.llm_replies import Reply
from pocketmesh_testing.doubles.responses_api import is_responses_path, request_messages

__all__ = ["FakeCall", "parse_body"]


@dataclass
class FakeCall:
    """One request the fake received: what was asked and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    reply: Reply | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's ``messages`` (empty if it had none); for the Responses API, its
        ``input`` as messages (a string input is one user message)."""
        if not isinstance(self.body, dict):
            return []
        if self.dialect == "responses":
            return request_messages(self.body)
        return list(self.body.get("messages") or [])

    @property
    def input(self) -> Any:
        """A Responses API request's ``input`` as sent (a string or a list of items)."""
        return self.body.get("input") if isinstance(self.body, dict) else None

    @property
    def instructions(self) -> str | None:
        """A Responses API request's ``instructions``."""
        return self.body.get("instructions") if isinstance(self.body, dict) else None

    @property
    def model(self) -> str | None:
        """The requested model."""
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed answer."""
        return bool(isinstance(self.body, dict) and self.body.get("stream"))

    @property
    def dialect(self) -> str:
        """``"anthropic"`` for ``/messages``, ``"responses"`` for the Responses API's
        ``/responses``, otherwise ``"openai"`` (chat completions)."""
        if is_responses_path(self.path):
            return "responses"
        return "anthropic" if self.path.rstrip("/").endswith("/messages") else "openai"

    def __str__(self) -> str:
        parts = [f"{self.method} {self.path}"]
        if self.model is not None:
            parts.append(f"model={self.model!r}")
        if self.stream:
            parts.append("stream=True")
        messages = self.messages
        if messages:
            last = messages[-1]
            content = last.get("content")
            if not isinstance(content, str):
                content = json.dumps(content)
            shown = content if len(content) <= 80 else content[:77] + "..."
            parts.append(f"{len(messages)} message(s), last {last.get('role')}: {shown!r}")
        elif self.body not in (None, ""):
            parts.append(f"body={json.dumps(self.body)[:120]}")
        return ", ".join(parts)


def parse_body(body: bytes) -> Any:
    """A request body as JSON, or as text when it is not JSON (``None`` when empty)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
