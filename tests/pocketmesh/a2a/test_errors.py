"""Bad requests get the A2A spec's JSON-RPC error codes (HTTP 200, never a 500) and persist nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Served, text_message

V1 = {"A2A-Version": "1.0"}


@pytest.fixture
async def nothing_persisted(server: Served) -> Any:
    before = await server.persistence.list_runs()
    yield
    assert await server.persistence.list_runs() == before


@pytest.mark.parametrize("raw", [b"{not json", b'{"jsonrpc": "2.0", "method": "message/send", '])
async def test_malformed_json_is_a_parse_error(rpc: Callable[..., Any], nothing_persisted: None, raw: bytes) -> None:
    body = await rpc("", raw=raw)
    assert body["error"]["code"] == -32700


@pytest.mark.parametrize("headers", [None, V1])
async def test_unknown_method(rpc: Callable[..., Any], nothing_persisted: None, headers: Any) -> None:
    body = await rpc("message/explode", {"message": text_message("x")}, headers=headers)
    assert body["error"]["code"] == -32601


@pytest.mark.parametrize(("method", "headers"), [("message/send", None), ("SendMessage", V1), ("tasks/get", None), ("GetTask", V1)])
async def test_missing_params(rpc: Callable[..., Any], nothing_persisted: None, method: str, headers: Any) -> None:
    body = await rpc(method, None, headers=headers)
    assert body["error"]["code"] == -32602, body


@pytest.mark.parametrize(
    ("method", "params", "headers"),
    [
        ("tasks/get", {"id": "no-such-task"}, None),
        ("GetTask", {"id": "no-such-task"}, V1),
        ("tasks/cancel", {"id": "no-such-task"}, None),
        ("CancelTask", {"id": "no-such-task"}, V1),
        ("message/send", {"message": text_message("x", task_id="no-such-task")}, None),
        ("SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m1", "taskId": "no-such-task", "parts": [{"text": "x"}]}}, V1),
    ],
)
async def test_unknown_task_is_task_not_found(
    rpc: Callable[..., Any], nothing_persisted: None, method: str, params: Any, headers: Any
) -> None:
    body = await rpc(method, params, headers=headers)
    assert body["error"]["code"] == -32001, body


async def test_v1_method_without_version_header_is_refused(rpc: Callable[..., Any], nothing_persisted: None) -> None:
    body = await rpc("SendMessage", {"message": {"role": "ROLE_USER", "messageId": "m1", "parts": [{"text": "x"}]}})
    assert "error" in body
