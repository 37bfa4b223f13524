"""message/send round trips per second: a trivial PocketMesh flow beside a bare a2a-sdk echo
executor, each served the same way (uvicorn in its own process, JSON-RPC with 0.3 compat),
driven by one sequential client on 127.0.0.1.

    python benchmarks/a2a_roundtrip.py [--seconds 3] [--clients 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")

SERVERS = ("bare-sdk", "pocketmesh-memory", "pocketmesh-sqlite")


def build_app(kind: str, port: int, db: str) -> Any:
    """The ASGI app for one server kind."""
    url = f"http://127.0.0.1:{port}/a2a"
    if kind == "bare-sdk":
        from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_part
        from a2a.server.agent_execution import AgentExecutor, RequestContext
        from a2a.server.events import EventQueue
        from a2a.server.request_handlers import DefaultRequestHandler
        from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
        from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
        from starlette.applications import Starlette

        from pocketmesh.a2a import generate_agent_card

        class Echo(AgentExecutor):
            async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
                assert context.message is not None
                if context.current_task is None:
                    await event_queue.enqueue_event(new_task_from_user_message(context.message))
                updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
                await updater.complete(updater.new_agent_message([new_text_part(f"echo: {context.get_user_input()}")]))

            async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
                raise NotImplementedError

        card = generate_agent_card(name="bare", url=url, skills=["echo"])
        handler = DefaultRequestHandler(agent_executor=Echo(), task_store=InMemoryTaskStore(), agent_card=card)
        return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/a2a", enable_v0_3_compat=True)])

    from typing import Any as _Any

    from pocketmesh import Flow, InMemoryPersistence, SQLitePersistence
    from pocketmesh.a2a import A2ABaseNode, create_a2a_app, generate_agent_card

    class EchoNode(A2ABaseNode):
        async def finalize(self, shared: dict[str, _Any], prep: _Any, result: _Any, params: dict[str, _Any]) -> str:
            self.set_final_response_parts(shared, [self.create_text_part(f"echo: {shared['input']}")])
            return "complete"

    persistence = InMemoryPersistence() if kind == "pocketmesh-memory" else SQLitePersistence(db)
    card = generate_agent_card(name="pocketmesh", url=url, skills=["echo"])
    return create_a2a_app({"echo": Flow(EchoNode())}, agent_card=card, persistence=persistence)


def serve(kind: str, port: int, db: str) -> None:
    """Child process: serve one kind until killed."""
    import uvicorn

    uvicorn.run(build_app(kind, port, db), host="127.0.0.1", port=port, log_level="warning")


async def drive(port: int, seconds: float, clients: int) -> tuple[float, float]:
    """Round trips per second and median latency (ms) for ``clients`` sequential senders."""
    import httpx

    url = f"http://127.0.0.1:{port}/a2a"
    latencies: list[float] = []

    async def one(http: httpx.AsyncClient) -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
            "kind": "message", "role": "user", "messageId": str(uuid.uuid4()), "parts": [{"kind": "text", "text": "hi"}]}}}
        start = time.perf_counter()
        response = await http.post(url, json=body)
        latencies.append(time.perf_counter() - start)
        assert response.json()["result"]["status"]["state"] == "completed", response.text

    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(50):  # warm-up
            await one(http)
        latencies.clear()
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await one(http)

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in SERVERS:
            port = free_port()
            child = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port), os.path.join(tmp, f"{kind}.sqlite")])
            try:
                wait_listening(port)
                rows.append((kind, *asyncio.run(drive(port, args.seconds, args.clients))))
            finally:
                child.terminate()
                child.wait(10)
    base = rows[0][1]
    print(f"{'server':<20} {'round trips/s':>14} {'median ms':>10} {'vs bare':>8}")
    for kind, rate, median in rows:
        print(f"{kind:<20} {rate:>14.0f} {median:>10.2f} {rate / base:>8.2f}")


if __name__ == "__main__":
    main()
