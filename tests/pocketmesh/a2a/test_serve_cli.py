"""``pocketmesh serve`` in a real subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from pocketmesh.a2a import create_a2a_client

from .conftest import free_port


async def test_serve_runs_the_greeting_example(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "serve.sqlite"
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pocketmesh.cli", "serve", "pocketmesh.examples.greeting:flows",
        "--port", str(port), "--db", str(db),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    card = (await http.get(f"{base}/.well-known/agent-card.json")).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("pocketmesh serve did not start listening within 10 s")
        assert [s["id"] for s in card["skills"]] == ["greeting"]
        assert card["supportedInterfaces"][0]["url"] == f"{base}/a2a"
        async with await create_a2a_client(base) as client:
            first = await client.send_message("Dana")
            last = await client.send_message("bye", task_id=first.task_id)
        assert (first.text, last.state, last.text) == ("Hello, Dana! What's on your mind?", "completed", "Goodbye, Dana!")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, output.decode()
    assert db.exists()


async def test_serve_reports_a_bad_target() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pocketmesh.cli", "serve", "pocketmesh.examples.greeting:missing",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert b"has no attribute 'missing'" in err
