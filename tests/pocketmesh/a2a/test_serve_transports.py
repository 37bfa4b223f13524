"""``pocketmesh serve`` with every transport, push notifications and the extended card, in a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from pocketmesh.a2a import create_a2a_client

from .conftest import free_port
from .test_push import Receiver, receiver, state_of  # noqa: F401 (the receiver fixture)


@asynccontextmanager
async def serve(*args: str) -> AsyncIterator[str]:
    """``pocketmesh serve ARGS`` in a subprocess until the block ends; yields its base URL."""
    port = free_port()
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pocketmesh.cli", "serve", *args, "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"{base}/.well-known/agent-card.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("pocketmesh serve did not start listening within 10 s")
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, output.decode()


async def test_serve_offers_every_transport_push_and_the_extended_card(tmp_path: Path, receiver: Receiver) -> None:
    grpc_port = free_port()
    async with serve(
        "pocketmesh.examples.tck:flows", "--db", str(tmp_path / "s.sqlite"), "--grpc-port", str(grpc_port),
        "--push-allow-host", "127.0.0.1", "--extended-card", "pocketmesh.examples.tck:extended_card",
        "--auth-token", "s3cret=alice",
    ) as base:
        async with httpx.AsyncClient() as http:
            card = (await http.get(f"{base}/.well-known/agent-card.json")).json()
        assert [(i["protocolBinding"], i["url"]) for i in card["supportedInterfaces"]] == [
            ("JSONRPC", f"{base}/a2a"), ("HTTP+JSON", f"{base}/a2a/rest"), ("GRPC", f"127.0.0.1:{grpc_port}"),
        ]
        assert card["capabilities"] == {"streaming": True, "pushNotifications": True, "extendedAgentCard": True}
        async with await create_a2a_client(base, transport="GRPC", auth_token="s3cret") as grpc_client:
            extended = await grpc_client.get_extended_card()
            asked = await grpc_client.send_message("x", message_id="tck-input-required-1")
        async with await create_a2a_client(base, transport="rest", auth_token="s3cret") as rest_client:
            await rest_client.set_push_config(asked.task_id, receiver.url, token="from-serve")
            done = await rest_client.send_message("y", task_id=asked.task_id, message_id="tck-complete-task-1")
        calls = await receiver.wait_for(2)
    assert [s.id for s in extended.skills] == ["tck", "tck-extended"]
    assert (asked.state, done.state, done.text) == ("input-required", "completed", "Hello from TCK")
    assert [(state_of(c), c.headers["x-a2a-notification-token"]) for c in calls] == [
        ("TASK_STATE_WORKING", "from-serve"), ("TASK_STATE_COMPLETED", "from-serve"),
    ]


async def run_serve(args: Sequence[str], prelude: str = "") -> tuple[int, str]:
    code = f"import sys; {prelude}from pocketmesh.cli import main; sys.exit(main({list(args)!r}))"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode or 0, err.decode()


async def test_grpc_without_grpcio_fails_saying_what_to_install() -> None:
    code, err = await run_serve(
        ["serve", "pocketmesh.examples.greeting:flows", "--grpc-port", str(free_port())],
        prelude="sys.modules['grpc'] = None; ",  # as if grpcio were not installed
    )
    assert code == 2
    assert "gRPC needs the grpcio package" in err and "pip install 'pocketmesh[grpc]'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extended-card", "pocketmesh.examples.greeting:build_flow"], "must take the public AgentCard"),
        (["--extended-card", "pocketmesh.examples.tck:LINGER_SECONDS"], "point it at an AgentCard"),
        (["--grpc-port", "0"], "expected a TCP port number"),
        (["--push-allow-host", ""], "host name, an address or a network"),
    ],
)
async def test_bad_serve_options_are_refused(args: list[str], message: str) -> None:
    code, err = await run_serve(["serve", "pocketmesh.examples.tck:flows", *args])
    assert code == 2 and message in err, err
