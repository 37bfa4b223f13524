"""message/send round trips per second: a trivial PocketMesh flow beside a bare a2a-sdk echo
executor, each served the same way (uvicorn in its own process, JSON-RPC with 0.3 compat),
driven by 1 or more concurrent clients on 127.0.0.1.

The baseline is the bare SDK on its own ``InMemoryTaskStore`` (``bare-sdk``); ``bare-memory``
and ``bare-sqlite`` run the bare executor on pocketmesh's task store, to tell the store's cost
from the flow layer's. (The SDK's own SQL store needs SQLAlchemy: ``a2a_inprocess.py`` compares
with it, from the comparison env.) OpenTelemetry is off on every server
(``OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=false``). All servers run at once and are measured in
alternating rounds; each figure is the median of the rounds. "CPU ratio" compares the server
processes' CPU time per round trip (baseline / this server).

``--in-process`` measures the same apps without sockets or a second process (httpx's ASGI
transport, sequential requests, median of the rounds).

    python benchmarks/a2a_roundtrip.py [--seconds 2] [--rounds 3] [--clients 1 32] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

os.environ["OTEL_INSTRUMENTATION_A2A_SDK_ENABLED"] = "false"

SERVERS = ("bare-sdk", "bare-memory", "pocketmesh-memory", "bare-sqlite", "pocketmesh-sqlite")
BASELINE = {"pocketmesh-memory": "bare-sdk", "pocketmesh-sqlite": "bare-sdk", "bare-memory": "bare-sdk", "bare-sqlite": "bare-sdk"}


def build_app(kind: str, port: int, db: str) -> Any:
    """The ASGI app for one server kind."""
    url = f"http://127.0.0.1:{port}/a2a"
    from pocketmesh import Flow, InMemoryPersistence, SQLitePersistence
    from pocketmesh.a2a import A2ABaseNode, PocketMeshTaskStore, create_a2a_app, generate_agent_card

    def persistence() -> Any:
        return SQLitePersistence(db) if kind.endswith("sqlite") else InMemoryPersistence()

    if kind.startswith("bare"):
        from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_part
        from a2a.server.agent_execution import AgentExecutor, RequestContext
        from a2a.server.events import EventQueue
        from a2a.server.request_handlers import DefaultRequestHandler
        from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
        from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
        from starlette.applications import Starlette

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
        store = InMemoryTaskStore() if kind == "bare-sdk" else PocketMeshTaskStore(persistence())
        handler = DefaultRequestHandler(agent_executor=Echo(), task_store=store, agent_card=card)
        return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/a2a", enable_v0_3_compat=True)])

    class EchoNode(A2ABaseNode):
        async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
            self.set_final_response_parts(shared, [self.create_text_part(f"echo: {shared['input']}")])
            return "complete"

    card = generate_agent_card(name="pocketmesh", url=url, skills=["echo"])
    return create_a2a_app({"echo": Flow(EchoNode())}, agent_card=card, persistence=persistence())


def serve(kind: str, port: int, db: str) -> None:
    """Child process: serve one kind until killed."""
    import uvicorn

    uvicorn.run(build_app(kind, port, db), host="127.0.0.1", port=port, log_level="warning")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, all threads (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, seconds: float, clients: int, pid: int, warmup: int = 30) -> tuple[float, list[float], float]:
    """Round trips per second, every latency (s), and the server's CPU seconds per round trip,
    for ``clients`` concurrent senders. CPU per round trip hardly moves when other work shares
    the machine; round trips per second do."""
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

    limits = httpx.Limits(max_connections=max(clients, 10), max_keepalive_connections=max(clients, 10))
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(one(http) for _ in range(max(clients, 1))))  # open the connections
        for _ in range(warmup):
            await one(http)
        latencies.clear()
        cpu_start = cpu_seconds(pid)
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await one(http)

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu_start
    return len(latencies) / elapsed, latencies, cpu / max(len(latencies), 1)


async def drive_in_process(
    kinds: list[str], seconds: float, rounds: int, db_dir: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Median round trips per second, and median CPU seconds per round trip (this process, all
    threads), of each app over httpx's ASGI transport; rounds interleaved."""
    import httpx
    import statistics

    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
    clients = {}
    for kind in kinds:
        app = build_app(kind, 4000, os.path.join(db_dir, f"{kind}-in-process.sqlite"))
        clients[kind] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent")

    async def one(http: httpx.AsyncClient) -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
            "kind": "message", "role": "user", "messageId": str(uuid.uuid4()), "parts": [{"kind": "text", "text": "hi"}]}}}
        response = await http.post("/a2a", json=body)
        assert response.json()["result"]["status"]["state"] == "completed", response.text

    try:
        for http in clients.values():
            for _ in range(30):
                await one(http)
        for _ in range(rounds):
            for kind, http in clients.items():
                count, start, cpu = 0, time.perf_counter(), time.process_time()
                while time.perf_counter() - start < seconds:
                    await one(http)
                    count += 1
                rates[kind].append(count / (time.perf_counter() - start))
                cpus[kind].append((time.process_time() - cpu) / count)
    finally:
        for http in clients.values():
            await http.aclose()
    return ({k: statistics.median(v) for k, v in rates.items()}, {k: statistics.median(v) for k, v in cpus.items()})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per server and client count (default 3)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1], help="concurrent client counts, e.g. 1 32")
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    parser.add_argument("--in-process", action="store_true", help="also measure without sockets (ASGI transport)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurements (with --in-process)")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        ports = {} if args.no_http else {kind: free_port() for kind in args.servers}
        children = {
            kind: subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port), os.path.join(tmp, f"{kind}.sqlite")])
            for kind, port in ports.items()
        }
        try:
            for port in ports.values():
                wait_listening(port)
            for clients in [] if args.no_http else args.clients:
                rates: dict[str, list[float]] = {kind: [] for kind in ports}
                lat: dict[str, list[float]] = {kind: [] for kind in ports}
                cpus: dict[str, list[float]] = {kind: [] for kind in ports}
                for _ in range(args.rounds):
                    for kind, port in ports.items():
                        rate, latencies, cpu_per_req = asyncio.run(drive(port, args.seconds, clients, children[kind].pid))
                        rates[kind].append(rate)
                        lat[kind].extend(latencies)
                        cpus[kind].append(cpu_per_req)
                print(f"\n{clients} client(s), HTTP on 127.0.0.1, median of {args.rounds} x {args.seconds:g} s")
                print(
                    f"{'server':<18} {'round trips/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'rt/s ratio':>10} "
                    f"{'baseline':<12} {'CPU ms/req':>10} {'CPU ratio':>9}"
                )
                best = {kind: statistics.median(r) for kind, r in rates.items()}
                cpu = {kind: statistics.median(c) for kind, c in cpus.items()}
                for kind in ports:
                    base = BASELINE.get(kind)
                    known = base in best
                    print(
                        f"{kind:<18} {best[kind]:>13.0f} {percentile(lat[kind], 0.5) * 1000:>7.2f} "
                        f"{percentile(lat[kind], 0.99) * 1000:>7.2f} "
                        f"{f'{best[kind] / best[base]:.2f}x' if known else '':>10} {base if known else '':<12} "
                        f"{cpu[kind] * 1000:>10.2f} {f'{cpu[base] / cpu[kind]:.2f}x' if known else '':>9}"
                    )
        finally:
            for child in children.values():
                child.terminate()
            for child in children.values():
                child.wait(10)
        if args.in_process:
            best, cpu = asyncio.run(drive_in_process(args.servers, args.seconds, args.rounds, tmp))
            print(f"\nin-process (ASGI transport, no sockets), median of {args.rounds} x {args.seconds:g} s")
            print(
                f"{'server':<18} {'round trips/s':>13} {'us/req':>7} {'CPU us':>7} {'rt/s ratio':>10} "
                f"{'baseline':<12} {'CPU ratio':>9}"
            )
            for kind, rate in best.items():
                base = BASELINE.get(kind)
                known = base in best
                print(
                    f"{kind:<18} {rate:>13.0f} {1e6 / rate:>7.0f} {cpu[kind] * 1e6:>7.0f} "
                    f"{f'{rate / best[base]:.2f}x' if known else '':>10} {base if known else '':<12} "
                    f"{f'{cpu[base] / cpu[kind]:.2f}x' if known else '':>9}"
                )


if __name__ == "__main__":
    main()
