"""A2A test fixtures: real uvicorn servers on 127.0.0.1, and small flows to serve."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from pocketmesh import BaseNode, Flow, InMemoryPersistence
from pocketmesh.a2a import A2ABaseNode, create_a2a_app, generate_agent_card
from pocketmesh.a2a.card import skills_for_flows
from pocketmesh.examples import greeting

os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")


class EchoNode(A2ABaseNode):
    """Replies "echo: <input>" and completes."""

    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> str:
        return str(shared.get("input", ""))

    async def finalize(self, shared: dict[str, Any], prep: str, result: Any, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part(f"echo: {prep}")])
        return "complete"


class ShoutNode(A2ABaseNode):
    """Replies with the input in capitals."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        self.set_final_response_parts(shared, [self.create_text_part(str(shared.get("input", "")).upper())])


class ChunkNode(A2ABaseNode):
    """Streams the input back one word per artifact chunk, under one artifact id per task."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> int:
        words = str(shared.get("input", "")).split()
        for word in words:
            await self.emit_artifact(
                {"artifactId": f"words-{shared['__a2a_task_id']}", "name": "words", "parts": [self.create_text_part(word)]}
            )
            await asyncio.sleep(0.005)
        return len(words)

    async def finalize(self, shared: dict[str, Any], prep: Any, count: int, params: dict[str, Any]) -> None:
        self.set_final_response_parts(shared, [self.create_text_part(f"{count} words")])


class CollectNode(A2ABaseNode):
    """Keeps every input in shared["seen"] and asks for more, slowly (to widen race windows)."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        await asyncio.sleep(0.01)

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared.setdefault("seen", []).append(shared.get("input"))
        shared["runs"] = shared.get("runs", 0) + 1
        self.set_final_response_parts(shared, [self.create_text_part(f"seen {len(shared['seen'])}")])
        return "input-required"


class BoomNode(BaseNode):
    """Always fails."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        raise RuntimeError("the boom node exploded")


def make_flows() -> dict[str, BaseNode]:
    """The flows most tests serve."""
    echo = EchoNode()
    return {
        "echo": Flow(echo),
        "shout": Flow(ShoutNode()),
        "chunks": Flow(ChunkNode()),
        "collect": Flow(CollectNode()),
        "boom": Flow(BoomNode()),
        "greeting": greeting.build_flow(),
    }


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A running server: its base URL, JSON-RPC URL and persistence (and gRPC port, if served)."""

    base_url: str
    rpc_url: str
    persistence: Any
    grpc_port: int | None = None


@asynccontextmanager
async def serving(
    flows: Mapping[str, BaseNode],
    persistence: Any = None,
    port: int | None = None,
    card_options: Mapping[str, Any] | None = None,
    card: Any = None,
    wrap: Callable[[Any], Any] | None = None,
    **app_options: Any,
) -> AsyncIterator[Served]:
    """Serve ``flows`` with uvicorn on 127.0.0.1 for the ``async with`` body (``app_options``: auth, ...;
    ``card_options`` go to ``generate_agent_card``; ``wrap``: an ASGI middleware put around the app)."""
    port = port or free_port()
    persistence = persistence if persistence is not None else InMemoryPersistence()
    base = f"http://127.0.0.1:{port}"
    card = card or generate_agent_card(
        name="test-agent", url=f"{base}/a2a", skills=skills_for_flows(flows), **(card_options or {})
    )
    app = create_a2a_app(flows, agent_card=card, persistence=persistence, **app_options)
    if wrap is not None:
        app = wrap(app)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield Served(base, f"{base}/a2a", persistence, app_options.get("grpc_port"))
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Served]:
    """The test flows served on a free port, with in-memory persistence."""
    async with serving(make_flows()) as served:
        yield served


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for raw JSON-RPC."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def rpc(http: httpx.AsyncClient, server: Served) -> Callable[..., Any]:
    """Post one JSON-RPC request (0.3 unless headers say otherwise) and return the decoded body."""

    async def call(method: str, params: Any = None, *, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Any:
        if raw is not None:
            response = await http.post(server.rpc_url, content=raw, headers={"content-type": "application/json"})
        else:
            body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
            if params is not None:
                body["params"] = params
            response = await http.post(server.rpc_url, json=body, headers=headers or {})
        assert response.status_code == 200, response.text
        return response.json()

    return call


def text_message(text: str, *, task_id: str | None = None, skill: str | None = None, message_id: str | None = None) -> dict[str, Any]:
    """A 0.3-shaped user message (``kind`` parts), as the seed sends it."""
    import uuid

    message: dict[str, Any] = {
        "kind": "message",
        "role": "user",
        "messageId": message_id or str(uuid.uuid4()),
        "parts": [{"kind": "text", "text": text}],
    }
    if task_id:
        message["taskId"] = task_id
    if skill:
        message["metadata"] = {"skillId": skill}
    return message


@dataclass
class InProcess:
    """An app driven in-process through httpx's ASGI transport (no sockets, no lifespan)."""

    http: httpx.AsyncClient
    persistence: Any

    async def post(self, body: Any = None, *, raw: bytes | None = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """POST a JSON body (or raw bytes) to ``/a2a``."""
        content = raw if raw is not None else json.dumps(body).encode()
        return await self.http.post("/a2a", content=content, headers={"content-type": "application/json", **(headers or {})})


@asynccontextmanager
async def in_process(flows: Mapping[str, BaseNode] | None = None, **app_options: Any) -> AsyncIterator[InProcess]:
    """The test flows as an ASGI app on in-memory persistence, for the ``async with`` body."""
    persistence = app_options.pop("persistence", None) or InMemoryPersistence()
    app = create_a2a_app(flows or make_flows(), persistence=persistence, **app_options)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent.test", timeout=10) as http:
        yield InProcess(http, persistence)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[InProcess]:
    """The test flows in-process, unauthenticated, 1 MiB body limit."""
    async with in_process() as served:
        yield served


def error_code(response: httpx.Response) -> int | None:
    """The JSON-RPC error code of a response (JSON or SSE), or ``None`` for a result."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        # Split on newlines only: splitlines() also splits inside a JSON string holding U+0085 etc.
        events = [json.loads(line[5:]) for line in text.split("\n") if line.startswith("data:")]
        errors = [e["error"]["code"] for e in events if "error" in e]
        return errors[0] if errors else None
    body = json.loads(text)
    assert body.get("jsonrpc") == "2.0", text
    return body["error"]["code"] if "error" in body else None
