"""The example agents, served over real HTTP (the LLM one against a loopback fake model)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pocketmesh.a2a import create_a2a_client
from pocketmesh.examples import fallback, llm, retry_loop, subflow

from .conftest import Served, free_port, serving


@pytest_asyncio.fixture
async def fake_openai(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[dict[str, Any]]]:
    """A loopback chat-completions endpoint: "summarize" for classification, three tokens streamed."""
    calls: list[dict[str, Any]] = []

    async def completions(request: Request) -> Response:
        body = await request.json()
        calls.append(body)
        if not body.get("stream"):
            return JSONResponse({"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Summarize"}}]})

        async def chunks() -> AsyncIterator[str]:
            for token in ["It ", "is ", "short."]:
                chunk = {"id": "c2", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    port = free_port()
    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.005)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("POCKETMESH_MODEL", "test-model")
    try:
        yield calls
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def examples() -> AsyncIterator[Served]:
    flows = {**llm.flows, **retry_loop.flows, **fallback.flows, **subflow.flows}
    flows["retry-always"] = retry_loop.build_flow(max_iterations=3)
    flows["retry-always"].start_node.set_params({"max_iterations": 3, "success_rate": 1.0})
    async with serving(flows) as served:
        yield served


async def test_llm_branch_then_streamed_tokens(examples: Served, fake_openai: list[dict[str, Any]]) -> None:
    async with await create_a2a_client(examples.base_url) as client:
        events = [e async for e in client.send_message_stream("a long text", skill="assistant")]
    tokens = [e.text for e in events if e.kind == "artifact-update"]
    assert tokens == ["It ", "is ", "short."]
    assert [e.metadata["pocketmesh"]["node"] for e in events if e.state == "working"] == ["LLMBranchNode", "Summarize"]
    assert (events[-1].state, events[-1].text) == ("completed", "It is short.")
    assert [c["model"] for c in fake_openai] == ["test-model", "test-model"]
    assert fake_openai[1]["messages"][0]["content"].startswith("Summarize")


async def test_retry_loop_reports_how_it_ended(examples: Served) -> None:
    async with await create_a2a_client(examples.base_url) as client:
        reply = await client.send_message("go", skill="retry-always")
        maybe = await client.send_message("go", skill="retry-loop")
    assert (reply.state, reply.text) == ("completed", "succeeded after 1 iteration(s)")
    assert maybe.state == "completed" and ("succeeded" in maybe.text or "gave up" in maybe.text)


async def test_fallback_answers_a_failure(examples: Served) -> None:
    async with await create_a2a_client(examples.base_url) as client:
        good = await client.send_message("10 / 4", skill="divide")
        bad = await client.send_message("1 / 0", skill="divide")
        data = await client.send_message([{"kind": "data", "data": {"a": 9, "b": 3}}], skill="divide")
    assert (good.state, good.text) == ("completed", "2.5")
    assert (bad.state, bad.text) == ("completed", "An unexpected error occurred. Please try again.")
    assert data.text == "3"


async def test_subflow_result_reaches_the_reply(examples: Served) -> None:
    async with await create_a2a_client(examples.base_url) as client:
        reply = await client.send_message("three little words", skill="subflow")
    assert (reply.state, reply.text) == ("completed", "3 words")
