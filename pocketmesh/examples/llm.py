"""LLM nodes on the official ``openai`` SDK: an intent classifier that branches, and a
streaming answer that emits each token as an artifact chunk.

The client is made on first use (``openai.AsyncOpenAI()`` reads ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL``) and reused per event loop; the model comes from the ``model`` param,
else ``POCKETMESH_MODEL``, else ``gpt-4o-mini``. Serve with ``pocketmesh serve pocketmesh.examples.llm:flows``.

The ``openai`` package is not a runtime dependency: it comes with ``pocketmesh[testing]``
(whose fake LLM these examples are tested against), or ``pip install openai``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import weakref
from typing import Any

from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode

DEFAULT_MODEL = "gpt-4o-mini"

if importlib.util.find_spec("openai") is None:
    raise ImportError(
        "pocketmesh.examples.llm calls models through the openai package, which is not installed; "
        "install it with: pip install 'pocketmesh[testing]' (or pip install openai)"
    )


def model_for(params: dict[str, Any]) -> str:
    """The model to call: the ``model`` param, else ``POCKETMESH_MODEL``, else the default."""
    return str(params.get("model") or os.environ.get("POCKETMESH_MODEL") or DEFAULT_MODEL)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str | None, str | None], Any]] = (
    weakref.WeakKeyDictionary()
)


def make_client() -> Any:
    """An ``openai.AsyncOpenAI`` configured from the environment, shared by the nodes.

    Building a client per call costs more than many model calls do, and each one would hold
    its own connection pool; one client per event loop and configuration is reused instead
    (a client's connections belong to the loop that opened them).
    """
    import openai

    key = (os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY"))
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = openai.AsyncOpenAI()
    return client


class LLMBranchNode(A2ABaseNode):
    """Classifies the user's intent as "summarize" or "analyze" and routes on it."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return str(shared.get("input") or shared.get("userInput") or "")

    async def execute(self, user_input: str, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        completion = await make_client().chat.completions.create(
            model=model_for(params),
            messages=[
                {"role": "system", "content": "Classify the user intent: 'summarize' or 'analyze'. Answer with one word."},
                {"role": "user", "content": f"{params.get('prompt', 'Request')}: {user_input}"},
            ],
            max_tokens=10,
        )
        return (completion.choices[0].message.content or "").strip().lower()

    async def finalize(self, shared: dict[str, Any], prep: str, intent: str, params: dict[str, Any]) -> str:
        shared["intent"] = intent
        return "summary-path" if intent.startswith("summar") else "analysis-path"


class StreamingAnswerNode(A2ABaseNode):
    """Answers with a streamed completion; each token goes out as a chunk of one artifact."""

    def __init__(self, instruction: str = "", *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.instruction = instruction

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return str(shared.get("input") or "")

    async def execute(self, user_input: str, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
        messages = [{"role": "user", "content": user_input}]
        if self.instruction:
            messages.insert(0, {"role": "system", "content": self.instruction})
        stream = await make_client().chat.completions.create(model=model_for(params), messages=messages, stream=True)
        answer = []
        async for chunk in stream:
            token = chunk.choices[0].delta.content if chunk.choices else None
            if token:
                answer.append(token)
                await self.emit_artifact({"artifactId": "response-stream", "name": "response", "parts": [self.create_text_part(token)]})
        return "".join(answer)

    async def finalize(self, shared: dict[str, Any], prep: str, answer: str, params: dict[str, Any]) -> str:
        shared["answer"] = answer
        self.set_final_response_parts(shared, [self.create_text_part(answer)])
        return "complete"


def build_router() -> Flow:
    """Classify, then answer as a summary or an analysis."""
    branch = LLMBranchNode()
    branch - "summary-path" >> StreamingAnswerNode("Summarize the user's text in two sentences.", name="Summarize")
    branch - "analysis-path" >> StreamingAnswerNode("Analyze the user's text: claims, evidence, gaps.", name="Analyze")
    return Flow(branch, name="llm-router")


flows = {"assistant": build_router(), "stream": Flow(StreamingAnswerNode(), name="llm-stream")}
