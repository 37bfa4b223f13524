"""Size limits over real HTTP: one message, and one task's history; refused with -32602 saying
which limit and how to get past it, and nothing stored."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from pocketmesh import InMemoryPersistence, load_run_record
from pocketmesh.a2a import create_a2a_app
from pocketmesh.a2a.messages import DEFAULT_MAX_HISTORY_SIZE, DEFAULT_MAX_MESSAGE_SIZE, MessageLimits

from .conftest import make_flows, serving, text_message


def send(text: str, task_id: str | None = None, method: str = "message/send") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": text_message(text, task_id=task_id, skill=None if task_id else "collect")}}


async def test_a_message_over_the_limit_is_refused_and_nothing_is_stored() -> None:
    async with serving(make_flows(), max_message_size=2000) as served, httpx.AsyncClient(timeout=10) as http:
        refused = (await http.post(served.rpc_url, json=send("x" * 3000))).json()
        streamed = await http.post(served.rpc_url, json=send("x" * 3000, method="message/stream"))
        stored = await served.persistence.list_runs()
        fine = (await http.post(served.rpc_url, json=send("x" * 1000))).json()
    error = refused["error"]
    assert error["code"] == -32602
    assert "bytes, over this agent's limit of 2000 bytes" in error["message"] and "--max-message-size" in error["message"]
    assert '"code":-32602' in streamed.text.replace(" ", "")
    assert stored == []
    assert fine["result"]["status"]["state"] == "input-required"


async def test_a_task_stops_taking_messages_at_its_history_limit() -> None:
    async with serving(make_flows(), max_history_size=4000) as served, httpx.AsyncClient(timeout=10) as http:
        first = (await http.post(served.rpc_url, json=send("a" * 1000))).json()["result"]
        task_id = first["id"]
        answers = [(await http.post(served.rpc_url, json=send(c * 1000, task_id))).json() for c in "bcdef"]
        accepted = [a for a in answers if "result" in a]
        refused = [a["error"] for a in answers if "error" in a]
        task = (await http.post(served.rpc_url, json={"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task_id}})).json()
        record = await load_run_record(served.persistence, task_id)
        other = (await http.post(served.rpc_url, json=send("a new task"))).json()

    assert 1 <= len(accepted) < 5 and len(refused) == 5 - len(accepted)
    assert all(e["code"] == -32602 for e in refused)
    assert f"task {task_id!r} holds" in refused[0]["message"] and "limit of 4000 bytes" in refused[0]["message"]
    assert "--max-history-size" in refused[0]["message"] and "Start a new task" in refused[0]["message"]
    kept = 1 + len(accepted)
    assert record is not None and len(record.shared["seen"]) == kept  # the refused turns never ran
    users = [m for m in task["result"]["history"] if m["role"] == "user"]
    assert len(users) == kept  # nor reached the history
    assert other["result"]["status"]["state"] == "input-required"


def test_limits_default_and_are_checked() -> None:
    app = create_a2a_app(make_flows(), persistence=InMemoryPersistence())
    handler = app.state.a2a.handler
    assert handler.limits == MessageLimits(DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_HISTORY_SIZE)
    assert (DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_HISTORY_SIZE) == (1024 * 1024, 8 * 1024 * 1024)
    assert MessageLimits(0, None) == MessageLimits(None, None)  # 0 and None: no limit
    with pytest.raises(ValueError, match="max_history_size must be a whole number of bytes .* got -1"):
        create_a2a_app(make_flows(), persistence=InMemoryPersistence(), max_history_size=-1)
    with pytest.raises(ValueError, match="max_message_size"):
        MessageLimits(max_message_size="1MB")  # type: ignore[arg-type]


async def test_without_limits_a_large_message_is_served() -> None:
    async with serving(make_flows(), max_message_size=None, max_history_size=0) as served, httpx.AsyncClient(timeout=10) as http:
        body = send("z" * 900_000)
        body["params"]["message"]["messageId"] = str(uuid.uuid4())
        answer = (await http.post(served.rpc_url, json=body)).json()
    assert answer["result"]["status"]["state"] == "input-required"
