"""A2A served in-process: round trips, and turn cost against conversation length.

Requests go through httpx's ASGI transport (JSON-RPC ``message/send``, 0.3 method names): no
sockets, no second process, so what is measured is the server's own work. OpenTelemetry is off.

Systems: pocketmesh (``create_a2a_app``, an echo flow) on ``InMemoryPersistence`` and on
``SQLitePersistence`` (``synchronous=NORMAL``, its default), and the bare a2a-sdk (the same
echo as an ``AgentExecutor``, ``DefaultRequestHandler``) on its own ``InMemoryTaskStore`` and
on its own ``DatabaseTaskStore`` over SQLite (SQLAlchemy + aiosqlite: the SDK systems run from
``benchmarks/.venv-alt``, where those are installed, with the same a2a-sdk version).

``roundtrip SYSTEM SECONDS``: one new task per message, answered ``completed``; prints round
trips per second over SECONDS after a warm-up.

``turns SYSTEM L1 L2 ...``: one task whose every turn pauses for input (``input-required``),
so the conversation goes on; the client sends follow-ups with ``historyLength: 1`` (the reply
carries the last message only, so the wire cost stays flat and what grows is the server's
work). A turn at length L is timed when the task already holds L turns (2L messages); each
figure is the median of ``WINDOW`` consecutive turns from there. Prints {L: ms per turn}.

    python benchmarks/a2a_inprocess.py roundtrip "pocketmesh memory" 2
    python benchmarks/a2a_inprocess.py turns "pocketmesh memory" 1 10 100 500
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

os.environ["OTEL_INSTRUMENTATION_A2A_SDK_ENABLED"] = "false"

SYSTEMS = ("pocketmesh memory", "SDK InMemoryTaskStore", "pocketmesh SQLite", "SDK DatabaseTaskStore (SQLite)")
WINDOW = 9


def build_app(system: str, db: str, answer: str = "input-required") -> Any:
    """The ASGI app of one system; its echo answers ``answer`` (``input-required`` or ``completed``)."""
    url = "http://agent/a2a"
    if system.startswith("pocketmesh"):
        from pocketmesh import Flow, InMemoryPersistence, SQLitePersistence
        from pocketmesh.a2a import A2ABaseNode, create_a2a_app, generate_agent_card

        class Echo(A2ABaseNode):
            async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
                self.set_final_response_parts(shared, [self.create_text_part(f"echo: {shared['input']}")])
                return "input-required" if answer == "input-required" else "complete"

        store = SQLitePersistence(db) if "SQLite" in system else InMemoryPersistence()
        card = generate_agent_card(name="pocketmesh", url=url, skills=["echo"])
        return create_a2a_app({"echo": Flow(Echo())}, agent_card=card, persistence=store)

    from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_part
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
    from starlette.applications import Starlette

    class Echo(AgentExecutor):  # type: ignore[misc]
        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            assert context.message is not None
            if context.current_task is None:
                await event_queue.enqueue_event(new_task_from_user_message(context.message))
            updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
            reply = updater.new_agent_message([new_text_part(f"echo: {context.get_user_input()}")])
            await (updater.requires_input(reply) if answer == "input-required" else updater.complete(reply))

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            raise NotImplementedError

    card = AgentCard(
        name="bare", description="echo", version="1",
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True), default_input_modes=["text/plain"],
        default_output_modes=["text/plain"], skills=[AgentSkill(id="echo", name="echo", description="echo", tags=["echo"])],
    )
    if "Database" in system:
        from a2a.server.tasks import DatabaseTaskStore
        from sqlalchemy.ext.asyncio import create_async_engine

        store: Any = DatabaseTaskStore(create_async_engine(f"sqlite+aiosqlite:///{db}"))
    else:
        store = InMemoryTaskStore()
    handler = DefaultRequestHandler(agent_executor=Echo(), task_store=store, agent_card=card)
    return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/a2a", enable_v0_3_compat=True)])


async def converse(system: str, lengths: list[int]) -> dict[str, float]:
    """Milliseconds per turn at each conversation length (median of WINDOW turns)."""
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(system, os.path.join(tmp, "turns.sqlite"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as http:
            task_id: str | None = None
            context_id = str(uuid.uuid4())

            async def turn(n: int) -> float:
                nonlocal task_id
                message: dict[str, Any] = {"kind": "message", "role": "user", "messageId": str(uuid.uuid4()),
                                           "contextId": context_id, "parts": [{"kind": "text", "text": f"turn {n}"}]}
                if task_id is not None:
                    message["taskId"] = task_id
                body = {"jsonrpc": "2.0", "id": n, "method": "message/send",
                        "params": {"message": message, "configuration": {"historyLength": 1}}}
                start = time.perf_counter()
                response = await http.post("/a2a", json=body)
                elapsed = time.perf_counter() - start
                result = response.json()["result"]
                assert result["status"]["state"] == "input-required", response.text
                assert len(result.get("history", [])) <= 1, "historyLength 1 was not applied"
                task_id = result["id"]
                return elapsed

            wanted = {length: [] for length in lengths}
            done = 0
            last = max(lengths) + WINDOW
            while done < last:
                took = await turn(done)
                for length, times in wanted.items():
                    if length <= done < length + WINDOW:
                        times.append(took)
                done += 1
    return {str(length): statistics.median(times) * 1000 for length, times in wanted.items()}


async def round_trips(system: str, seconds: float, warmup: int = 50) -> float:
    """Round trips per second, a new task per message."""
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(system, os.path.join(tmp, "rt.sqlite"), answer="completed")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as http:

            async def one() -> None:
                body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
                    "kind": "message", "role": "user", "messageId": str(uuid.uuid4()), "parts": [{"kind": "text", "text": "hi"}]}}}
                response = await http.post("/a2a", json=body)
                assert response.json()["result"]["status"]["state"] == "completed", response.text

            for _ in range(warmup):
                await one()
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                await one()
                count += 1
            return count / (time.perf_counter() - start)


if __name__ == "__main__":
    if sys.argv[1] == "roundtrip":
        print(json.dumps(asyncio.run(round_trips(sys.argv[2], float(sys.argv[3])))))
    else:
        print(json.dumps(asyncio.run(converse(sys.argv[2], [int(a) for a in sys.argv[3:]]))))
