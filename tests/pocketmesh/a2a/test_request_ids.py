"""The JSON-RPC ``id`` check answers in its own words: what is wrong with the id, and how to fix it."""

from __future__ import annotations

import json

import pytest

from .conftest import InProcess


@pytest.mark.parametrize(("request_id", "shown"), [(True, "bool True"), (False, "bool False"), (1.5, "float 1.5"),
                                                   ({"n": 1}, "dict {'n': 1}")])
async def test_an_id_that_is_not_a_string_an_integer_or_null_is_named(agent: InProcess, request_id: object,
                                                                     shown: str) -> None:
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tasks/get", "params": {"id": "x"}}
    response = await agent.post(raw=json.dumps(body).encode())
    assert response.status_code == 200
    answer = response.json()
    assert answer["id"] is None  # an unusable id is never echoed back
    assert answer["error"]["code"] == -32600
    assert answer["error"]["message"] == f"invalid request: 'id' must be a string, an integer or null, got {shown}."
    assert await agent.persistence.list_runs() == []


@pytest.mark.parametrize("request_id", [0, 7, "req-7"])
async def test_string_and_integer_ids_are_accepted_and_echoed(agent: InProcess, request_id: object) -> None:
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tasks/get", "params": {"id": "unknown"}}
    answer = (await agent.post(raw=json.dumps(body).encode())).json()
    assert answer["id"] == request_id
    assert answer["error"]["code"] == -32001  # the id passed; the task is what is unknown
