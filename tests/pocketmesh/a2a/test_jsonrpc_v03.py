"""The seed's 0.3 JSON-RPC shape over raw HTTP: ``message/send`` with ``kind`` parts, no version header."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from pocketmesh import load_run_record

from .conftest import Served, text_message


async def test_message_send_completes(rpc: Callable[..., Any], server: Served) -> None:
    body = await rpc("message/send", {"message": text_message("hi")})
    task = body["result"]
    assert task["kind"] == "task"
    assert task["status"]["state"] == "completed"
    assert task["status"]["message"]["parts"] == [{"kind": "text", "text": "echo: hi"}]
    assert task["status"]["message"]["role"] == "agent"


async def test_three_turn_greeting_in_the_seed_shape(rpc: Callable[..., Any], server: Served) -> None:
    first = (await rpc("message/send", {"message": text_message("Bob", skill="greeting")}))["result"]
    task_id = first["id"]
    assert first["status"]["state"] == "input-required"
    second = (await rpc("message/send", {"message": text_message("cats", task_id=task_id)}))["result"]
    assert second["status"]["message"]["parts"][0]["text"] == 'Got it: "cats". Anything else?'
    third = (await rpc("message/send", {"message": text_message("bye", task_id=task_id)}))["result"]
    assert third["status"]["state"] == "completed"
    assert third["status"]["message"]["parts"][0]["text"] == "Goodbye, Bob!"
    got = (await rpc("tasks/get", {"id": task_id}))["result"]
    assert [m["role"] for m in got["history"]] == ["user", "agent", "user", "agent", "user"]


async def test_message_stream_events_in_order(http: httpx.AsyncClient, server: Served) -> None:
    request = {"jsonrpc": "2.0", "id": 7, "method": "message/stream", "params": {"message": text_message("x y", skill="chunks")}}
    events = []
    async with http.stream("POST", server.rpc_url, json=request) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:])["result"])
    kinds = [e["kind"] for e in events]
    assert kinds == ["task", "status-update", "artifact-update", "artifact-update", "status-update"]
    assert events[1]["status"]["state"] == "working"
    assert [e["artifact"]["parts"] for e in events[2:4]] == [[{"kind": "text", "text": "x"}], [{"kind": "text", "text": "y"}]]
    assert events[3]["append"] is True
    assert events[-1]["status"]["state"] == "completed" and events[-1]["final"] is True


async def test_tasks_cancel_and_get(rpc: Callable[..., Any], server: Served) -> None:
    task_id = (await rpc("message/send", {"message": text_message("a", skill="collect")}))["result"]["id"]
    canceled = (await rpc("tasks/cancel", {"id": task_id}))["result"]
    assert canceled["status"]["state"] == "canceled"
    assert (await rpc("tasks/get", {"id": task_id}))["result"]["status"]["state"] == "canceled"
    record = await load_run_record(server.persistence, task_id)
    assert record is not None and record.status == "canceled"
    refused = await rpc("message/send", {"message": text_message("b", task_id=task_id)})
    assert "error" in refused


async def test_skill_routing_and_unknown_skill(rpc: Callable[..., Any], server: Served) -> None:
    shouted = (await rpc("message/send", {"message": text_message("hey", skill="shout")}))["result"]
    assert shouted["status"]["message"]["parts"][0]["text"] == "HEY"
    before = await server.persistence.list_runs()
    body = await rpc("message/send", {"message": text_message("hey", skill="nope")})
    assert body["error"]["code"] == -32602
    assert "unknown skill 'nope'" in body["error"]["message"]
    assert await server.persistence.list_runs() == before
