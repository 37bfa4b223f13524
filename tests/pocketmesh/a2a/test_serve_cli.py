"""``pocketmesh serve`` in a real subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import uuid
from typing import Any

import httpx

from pocketmesh.a2a import create_a2a_client

from .conftest import free_port, make_flows


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

    from pocketmesh.cli import backend_of, parse_auth_tokens, token_owner

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
    tokens = parse_auth_tokens(["t1=alice", "t2", "t3"])
    assert {t: tokens[t] for t in ("t0", "t1")} == {"t0": "ops", "t1": "alice"}
    assert tokens["t2"] == token_owner("t2") != tokens["t3"] == token_owner("t3")  # an owner each
    assert "t2" not in tokens["t2"] and tokens["t2"].startswith("token-")
    with pytest.raises(ValueError, match="TOKEN=OWNER"):
        parse_auth_tokens(["t3="])


def test_a_token_file_is_read_line_by_line(tmp_path: Path, monkeypatch: "pytest.MonkeyPatch") -> None:
    import pytest

    from pocketmesh.cli import parse_auth_tokens, token_owner

    monkeypatch.delenv("POCKETMESH_AUTH_TOKENS", raising=False)
    path = tmp_path / "tokens"
    path.write_text("# comment\n\nk1 = alice\nk2\n")
    assert parse_auth_tokens(["k3=carol"], str(path)) == {"k1": "alice", "k2": token_owner("k2"), "k3": "carol"}
    path.write_text("k1=alice\nsupersecret=\n")
    with pytest.raises(ValueError, match="tokens, line 2: expected TOKEN or TOKEN=OWNER") as raised:
        parse_auth_tokens([], str(path))
    assert "supersecret" not in str(raised.value)  # an error names the line, never the whole token
    with pytest.raises(ValueError, match="cannot be read"):
        parse_auth_tokens([], str(tmp_path / "missing"))


def test_limits_flags_reach_the_app_and_are_refused_for_an_app_target() -> None:
    import pytest

    from pocketmesh.cli import build_app, build_parser

    args = build_parser().parse_args(["serve", "m:flows", "--max-message-size", "0", "--max-history-size", "5000"])
    assert (args.max_message_size, args.max_history_size) == (0, 5000)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "m:flows", "--max-history-size", "-1"])
    app = build_app(make_flows(), "m:flows", host="127.0.0.1", port=4000, name=None, db=":memory:", max_history_size=5000)
    handler = app.state.a2a.handler
    assert (handler.limits.max_message_size, handler.limits.max_history_size) == (1024 * 1024, 5000)
    with pytest.raises(ValueError, match="--max-history-size would be ignored"):
        build_app(app, "m:app", host="127.0.0.1", port=4000, name=None, db=None, max_history_size=5000)


async def test_serve_with_tokens_from_a_file_and_the_environment_and_limits(tmp_path: Path) -> None:
    port = free_port()
    tokens = tmp_path / "tokens"
    tokens.write_text("# who may call\ns3cret=alice\n\n  bare-token  \n")
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false", "POCKETMESH_AUTH_TOKENS": "env-token"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pocketmesh.cli", "serve", "pocketmesh.examples.greeting:flows",
        "--port", str(port), "--db", str(tmp_path / "s.sqlite"), "--auth-token-file", str(tokens),
        "--max-body-size", "4000", "--max-message-size", "1500", "--max-history-size", "3000",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    rpc = f"http://127.0.0.1:{port}/a2a"

    def send(text: str, task_id: str | None = None) -> dict[str, Any]:
        message = {"kind": "message", "role": "user", "messageId": str(uuid.uuid4()), "parts": [{"kind": "text", "text": text}]}
        return {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {**message, **({"taskId": task_id} if task_id else {})}}}

    listing = {"jsonrpc": "2.0", "id": 2, "method": "ListTasks", "params": {}}
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert (await http.post(rpc, json=send("Dana"))).status_code == 401
            alice, bare, other = ({"Authorization": f"Bearer {t}"} for t in ("s3cret", "bare-token", "env-token"))
            answer = (await http.post(rpc, json=send("Dana"), headers=alice)).json()
            assert answer["result"]["status"]["state"] == "input-required"
            task_id = answer["result"]["id"]
            too_big = (await http.post(rpc, json=send("x" * 2000, task_id), headers=alice)).json()
            assert too_big["error"]["code"] == -32602 and "--max-message-size" in too_big["error"]["message"]
            turns = [(await http.post(rpc, json=send("y" * 1000, task_id), headers=alice)).json() for _ in range(3)]
            refused = [t["error"] for t in turns if "error" in t]
            assert refused and refused[0]["code"] == -32602 and "--max-history-size" in refused[0]["message"]
            for headers in (bare, other):
                own = (await http.post(rpc, json=send("Eve"), headers=headers)).json()["result"]["id"]
                seen = (await http.post(rpc, json=listing, headers={**headers, "A2A-Version": "1.0"})).json()
                assert [t["id"] for t in seen["result"]["tasks"]] == [own]  # tokens without an owner share nothing
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), 10)
