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


def test_serve_options_pick_the_store_and_the_tokens(monkeypatch: "pytest.MonkeyPatch") -> None:
    import pytest

    from pocketmesh.cli import backend_of, parse_auth_tokens

    assert backend_of(None, None) == "sqlite"
    assert backend_of("runs.sqlite", None) == "sqlite"
    assert backend_of("postgresql://u:p@127.0.0.1/db", None) == "postgres"
    assert backend_of("redis://127.0.0.1:6379/0", "redis") == "redis"
    assert backend_of(None, "postgres") == "postgres"
    with pytest.raises(ValueError, match="does not match"):
        backend_of("redis://127.0.0.1/0", "postgres")
    with pytest.raises(ValueError, match="mysql"):
        backend_of("mysql://127.0.0.1/db", None)
    monkeypatch.setenv("POCKETMESH_AUTH_TOKENS", "t0=ops")
    assert parse_auth_tokens(["t1=alice", "t2"]) == {"t0": "ops", "t1": "alice", "t2": "default"}
    with pytest.raises(ValueError, match="TOKEN=OWNER"):
        parse_auth_tokens(["t3="])


async def test_serve_with_auth_token_and_body_limit(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pocketmesh.cli", "serve", "pocketmesh.examples.greeting:flows",
        "--port", str(port), "--db", str(tmp_path / "s.sqlite"), "--auth-token", "s3cret=alice",
        "--max-body-size", "2000",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    rpc = f"http://127.0.0.1:{port}/a2a"
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
        "kind": "message", "role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "Dana"}]}}}
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert (await http.post(rpc, json=body)).status_code == 401
            auth = {"Authorization": "Bearer s3cret"}
            answer = (await http.post(rpc, json=body, headers=auth)).json()
            assert answer["result"]["status"]["state"] == "input-required"
            big = {**body, "params": {"message": {**body["params"]["message"], "parts": [{"kind": "text", "text": "x" * 3000}]}}}
            refused = (await http.post(rpc, json=big, headers=auth)).json()
            assert refused["error"]["code"] == -32600 and "2000" in refused["error"]["message"]
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), 10)
