"""Hostile and malformed requests: the spec's JSON-RPC error, never a 5xx, nothing persisted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pocketmesh import InMemoryPersistence
from pocketmesh.a2a import create_a2a_app
from pocketmesh.a2a.endpoint import DEFAULT_MAX_BODY_SIZE
from pocketmesh.a2a.validation import MAX_DEPTH

from .conftest import InProcess, error_code, in_process, make_flows, serving, text_message

V1 = {"A2A-Version": "1.0"}


def send(message: Any, method: str = "message/send", **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": message}, **extra}


def v1_message(**fields: Any) -> dict[str, Any]:
    return {"role": "ROLE_USER", "messageId": "m-1", "parts": [{"text": "x"}], **fields}


HOSTILE: list[tuple[str, bytes, dict[str, Any], int]] = [
    # (case, body, headers, expected JSON-RPC code)
    ("empty body", b"", {}, -32700),
    ("not JSON", b"{not json", {}, -32700),
    ("truncated", b'{"jsonrpc": "2.0", "method": "message/send", ', {}, -32700),
    ("invalid UTF-8", b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}', {}, -32700),
    ("UTF-16 body", json.dumps(send(text_message("x"))).encode("utf-16"), {}, -32700),
    ("lone surrogate in a part", json.dumps(send(text_message("\ud800"))).encode(), {}, -32700),
    ("lone surrogate in a key", b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"\\udfff": 1}}', {}, -32700),
    ("lone surrogate id", b'{"jsonrpc": "2.0", "id": "\\ud800", "method": "tasks/get"}', {}, -32700),
    ("NaN", b'{"jsonrpc": "2.0", "id": NaN, "method": "tasks/get"}', {}, -32700),
    ("Infinity in data", json.dumps(send({**text_message("x"), "metadata": {"x": 1}})).replace("1}", "Infinity}").encode(), {}, -32700),
    ("1e999", json.dumps(send(text_message("x"))).replace('"kind": "message"', '"kind": "message", "n": 1e999').encode(), {}, -32700),
    ("huge integer", b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b', "method": "tasks/get"}', {}, -32700),
    ("deep nesting", b"[" * 100_000, {}, -32700),
    ("nesting past the limit", b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), {}, -32700),
    ("batch", json.dumps([send(text_message("x")), send(text_message("y"))]).encode(), {}, -32600),
    ("empty batch", b"[]", {}, -32600),
    ("number", b"42", {}, -32600),
    ("string", b'"message/send"', {}, -32600),
    ("null", b"null", {}, -32600),
    ("no jsonrpc", json.dumps({"id": 1, "method": "tasks/get", "params": {"id": "x"}}).encode(), {}, -32600),
    ("jsonrpc 1.0", json.dumps({"jsonrpc": "1.0", "id": 1, "method": "tasks/get", "params": {"id": "x"}}).encode(), {}, -32600),
    ("float id", json.dumps({"jsonrpc": "2.0", "id": 1.5, "method": "tasks/get", "params": {"id": "x"}}).encode(), {}, -32600),
    ("bool id", json.dumps({"jsonrpc": "2.0", "id": True, "method": "tasks/get", "params": {"id": "x"}}).encode(), {}, -32600),
    ("object id", json.dumps({"jsonrpc": "2.0", "id": {}, "method": "tasks/get", "params": {"id": "x"}}).encode(), {}, -32600),
    ("no method", json.dumps({"jsonrpc": "2.0", "id": 1}).encode(), {}, -32600),
    ("numeric method", json.dumps({"jsonrpc": "2.0", "id": 1, "method": 7}).encode(), {}, -32600),
    ("unknown method", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rm -rf", "params": {}}).encode(), {}, -32601),
    ("unknown 1.0 method", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "DeleteTask", "params": {}}).encode(), V1, -32601),
    ("params a list", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": [1]}).encode(), {}, -32602),
    ("params a string", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": "x"}).encode(), V1, -32602),
    ("message a string", json.dumps(send("hello")).encode(), {}, -32602),
    ("parts a number", json.dumps(send({**text_message("x"), "parts": 5})).encode(), {}, -32602),
    ("no parts", json.dumps(send({**text_message("x"), "parts": []})).encode(), {}, -32602),
    ("text a number", json.dumps(send({**text_message("x"), "parts": [{"kind": "text", "text": 5}]})).encode(), {}, -32602),
    ("unknown part kind", json.dumps(send({**text_message("x"), "parts": [{"kind": "video"}]})).encode(), {}, -32602),
    ("messageId a list", json.dumps(send({**text_message("x"), "messageId": []})).encode(), {}, -32602),
    ("role unknown", json.dumps(send({**text_message("x"), "role": "admin"})).encode(), {}, -32602),
    ("skillId a number", json.dumps(send({**text_message("x"), "metadata": {"skillId": 5}})).encode(), {}, -32602),
    ("unknown skill", json.dumps(send(text_message("x", skill="nope"))).encode(), {}, -32602),
    ("1.0 parts a number", json.dumps(send(v1_message(parts=5), "SendMessage")).encode(), V1, -32602),
    ("1.0 no message id", json.dumps(send(v1_message(messageId=""), "SendMessage")).encode(), V1, -32602),
    ("1.0 task id a number", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": 5}}).encode(), V1, -32602),
    ("negative history", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x", "historyLength": -1}}).encode(), V1, -32602),
    ("unknown task", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "nope"}}).encode(), {}, -32001),
    ("message to an unknown task", json.dumps(send(text_message("x", task_id="nope"))).encode(), {}, -32001),
    ("cancel an unknown task", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "CancelTask", "params": {"id": "nope"}}).encode(), V1, -32001),
    ("subscribe to an unknown task", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": "nope"}}).encode(), V1, -32001),
    ("resubscribe to an unknown task", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tasks/resubscribe", "params": {"id": "nope"}}).encode(), {}, -32001),
    ("1.0 method without the header", json.dumps(send(v1_message(), "SendMessage")).encode(), {}, -32009),
    ("1.0 method, version 2.0", json.dumps(send(v1_message(), "SendMessage")).encode(), {"A2A-Version": "2.0"}, -32009),
    ("1.0 method, version garbage", json.dumps(send(v1_message(), "SendMessage")).encode(), {"A2A-Version": "latest\u00e9".encode("latin-1")}, -32009),
    ("0.3 name with version 1.0", json.dumps(send(text_message("x"))).encode(), V1, -32009),
    ("0.3 stream with version 1.0", json.dumps(send(text_message("x"), "message/stream")).encode(), V1, -32009),
    ("1.0 stream without the header", json.dumps(send(v1_message(), "SendStreamingMessage")).encode(), {}, -32009),
    ("version of 10,000 digits", json.dumps(send(v1_message(), "SendMessage")).encode(), {"A2A-Version": "1" + "0" * 9999}, -32009),
    ("version 1.<10,000 digits>", json.dumps(send(v1_message(), "SendMessage")).encode(), {"A2A-Version": "1." + "0" * 9999}, -32009),
]


@pytest.mark.parametrize(("body", "headers", "code"), [pytest.param(b, h, c, id=case) for case, b, h, c in HOSTILE])
async def test_hostile_request_gets_the_spec_error_and_persists_nothing(
    agent: InProcess, body: bytes, headers: dict[str, Any], code: int
) -> None:
    response = await agent.post(raw=body, headers=headers)
    assert response.status_code == 200, response.text
    assert error_code(response) == code, response.text
    assert await agent.persistence.list_runs() == []


async def test_error_messages_name_the_problem_and_the_fix(agent: InProcess) -> None:
    body = (await agent.post(raw=b"[]")).json()
    assert body["id"] is None and "batch requests" in body["error"]["message"] and "one JSON-RPC request" in body["error"]["message"]
    body = (await agent.post(send(text_message("x"), "SendMessage"))).json()
    assert "A2A-Version: 1.0" in body["error"]["message"]
    assert "the request sent no A2A-Version header, so it is read as 0.3;" in body["error"]["message"]
    body = (await agent.post(send(text_message("x"), "SendMessage"), headers={"A2A-Version": "0.3"})).json()
    assert "the request says A2A-Version '0.3';" in body["error"]["message"]
    body = (await agent.post(send({**text_message("x"), "role": 5}))).json()
    assert body["id"] == 1 and "params.message.role" in body["error"]["message"]


async def test_body_over_the_limit_is_refused_before_it_is_read() -> None:
    async with in_process(max_body_size=2000) as agent:
        small = await agent.post(send(text_message("x" * 1000)))
        big = await agent.post(send(text_message("x" * 3000)))
        assert error_code(small) is None
        runs = await agent.persistence.list_runs()

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while read
            for _ in range(10):
                yield b" " * 500

        streamed = await agent.http.post("/a2a", content=chunks(), headers={"content-type": "application/json"})
        assert await agent.persistence.list_runs() == runs
    for response in (big, streamed):
        assert response.status_code == 200
        error = response.json()["error"]
        assert error["code"] == -32600
        assert "too large" in error["message"] and "2000" in error["message"] and "max_body_size" in error["message"]
        assert error["data"] == {"maxBodySize": 2000}


def test_max_body_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_size must be a positive number of bytes, got 0"):
        create_a2a_app(make_flows(), persistence=InMemoryPersistence(), max_body_size=0)


async def test_huge_parts_over_real_http_then_the_server_still_answers() -> None:
    async with serving(make_flows()) as served, httpx.AsyncClient(timeout=10) as http:
        huge = json.dumps(send(text_message("x" * (DEFAULT_MAX_BODY_SIZE + 10)))).encode()
        refused = await http.post(served.rpc_url, content=huge, headers={"content-type": "application/json"})
        many = json.dumps(send({**text_message("x"), "parts": [{"kind": "text", "text": "y"}] * 60_000})).encode()
        refused_too = await http.post(served.rpc_url, content=many, headers={"content-type": "application/json"})
        assert await served.persistence.list_runs() == []
        fine = await http.post(served.rpc_url, json=send(text_message("still here")))
    assert (refused.status_code, refused.json()["error"]["code"]) == (200, -32600)
    assert (refused_too.status_code, refused_too.json()["error"]["code"]) == (200, -32600)
    assert fine.json()["result"]["status"]["message"]["parts"][0]["text"] == "echo: still here"


async def test_large_part_under_the_limit_is_served(agent: InProcess) -> None:
    response = await agent.post(send(text_message("x" * 500_000)))
    result = response.json()["result"]
    assert result["status"]["message"]["parts"][0]["text"] == "echo: " + "x" * 500_000


DEEP_DATA = json.loads('{"a":' * 55 + "1" + "}" * 55)
LIST = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks"}
# (case, body, headers, the field the error must name); each is a client's mistake: -32602.
CLIENT_MISTAKES: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
    ("pageToken '²'", {**LIST, "params": {"pageToken": "²"}}, V1, "pageToken"),
    ("pageToken of 5000 digits", {**LIST, "params": {"pageToken": "9" * 5000}}, V1, "pageToken"),
    ("bad base64 in a 0.3 file part", send({**text_message("x"), "parts": [{"kind": "file", "file": {"bytes": "!!!%%%", "mimeType": "a/b"}}]}), {}, "params.message.parts[0].file.bytes"),
    ("unpadded base64 in a 0.3 file part", send({**text_message("x"), "parts": [{"kind": "file", "file": {"bytes": "YQ="}}]}), {}, "params.message.parts[0].file.bytes"),
    ("bad base64 in raw", send(v1_message(parts=[{"raw": "!!!%%%"}]), "SendMessage"), V1, "params.message.parts[0].raw"),
    ("historyLength 2**40 in 0.3 tasks/get", {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "x", "historyLength": 2**40}}, {}, "params.historyLength"),
    ("historyLength 2**40 in 0.3 message/send", {**LIST, "method": "message/send", "params": {"message": text_message("x"), "configuration": {"historyLength": 2**40}}}, {}, "params.configuration.historyLength"),
    ("historyLength 2**31 as a float in 0.3 tasks/get", {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "x", "historyLength": 2147483648.0}}, {}, "params.historyLength"),
    ("historyLength '2**40' as a string in 0.3 tasks/get", {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "x", "historyLength": str(2**40)}}, {}, "params.historyLength"),
    ("historyLength 2**40 in GetTask", {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x", "historyLength": 2**40}}, V1, "params.historyLength"),
    ("data part 55 deep, 0.3", send({**text_message("x"), "parts": [{"kind": "data", "data": DEEP_DATA}]}), {}, "params.message.parts[0].data"),
    ("data part 55 deep, 1.0", send(v1_message(parts=[{"data": DEEP_DATA}]), "SendMessage"), V1, "params.message.parts[0].data"),
    ("metadata 55 deep", send({**text_message("x"), "metadata": DEEP_DATA}), {}, "params.message.metadata"),
    ("role agent, 1.0", send(v1_message(role="ROLE_AGENT"), "SendMessage"), V1, "message.role"),
    ("role agent, 0.3", send({**text_message("x"), "role": "agent"}), {}, "message.role"),
    ("role 7", send(v1_message(role=7), "SendMessage"), V1, "params.message.role"),
    ("role ROLE_ADMIN", send(v1_message(role="ROLE_ADMIN"), "SendMessage"), V1, "params.message.role"),
    ("empty part", send(v1_message(parts=[{}]), "SendMessage"), V1, "message.parts[0]"),
    ("part with text and data", send(v1_message(parts=[{"text": "a", "data": 1}]), "SendMessage"), V1, "params.message.parts[0]"),
    ("ListTasks status BOGUS", {**LIST, "params": {"status": "BOGUS"}}, V1, "params.status"),
    ("ListTasks status 99", {**LIST, "params": {"status": 99}}, V1, "params.status"),
    ("ListTasks statusTimestampAfter yesterday", {**LIST, "params": {"statusTimestampAfter": "yesterday"}}, V1, "params.statusTimestampAfter"),
    ("ListTasks pageSize 2**40", {**LIST, "params": {"pageSize": 2**40}}, V1, "params.pageSize"),
]


@pytest.mark.parametrize(("body", "headers", "field"), [pytest.param(b, h, f, id=case) for case, b, h, f in CLIENT_MISTAKES])
async def test_client_mistakes_are_invalid_params_naming_the_field_and_store_nothing(
    agent: InProcess, body: dict[str, Any], headers: dict[str, str], field: str
) -> None:
    response = await agent.post(body, headers=headers)
    assert response.status_code == 200, response.text
    error = response.json()["error"]
    assert error["code"] == -32602, error
    assert f"{field} " in error["message"] or f"{field}:" in error["message"], error["message"]
    assert "Traceback" not in error["message"] and "Exceeds the limit" not in error["message"]
    assert await agent.persistence.list_runs() == []


async def test_client_mistakes_over_real_http() -> None:
    async with serving(make_flows()) as served, httpx.AsyncClient(timeout=10) as http:
        answers = [
            (case, await http.post(served.rpc_url, content=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}))
            for case, body, headers, _ in CLIENT_MISTAKES
        ]
        stored = await served.persistence.list_runs()
    for case, response in answers:
        assert response.status_code == 200 and error_code(response) == -32602, (case, response.text)
    assert stored == []


async def test_a_message_at_the_limits_is_still_served(agent: InProcess) -> None:
    nested: Any = 1
    for _ in range(24):
        nested = {"a": nested}
    accepted = await agent.post(send(v1_message(messageId="m-24", parts=[{"data": nested}, {"raw": "YQ"}, {"raw": "YQ=="}]), "SendMessage"), headers=V1)
    assert error_code(accepted) is None, accepted.text
    task_id = accepted.json()["result"]["task"]["id"]
    again = await agent.post({"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": task_id}}, headers=V1)
    assert again.json()["result"]["history"][0]["parts"][0]["data"] == nested  # stored, and read back


@pytest.mark.parametrize(
    ("case", "extra", "message_fields"),
    [
        ("negative historyLength", {"configuration": {"historyLength": -1}}, {}),
        ("another task's contextId", {}, {"contextId": "not-this-tasks-context"}),
        ("a push URL this agent refuses", {"configuration": {"pushNotificationConfig": {"url": "http://10.0.0.1/hook"}}}, {}),
    ],
)
async def test_a_refused_follow_up_leaves_its_task_as_it_was(case: str, extra: dict[str, Any], message_fields: dict[str, Any]) -> None:
    async with in_process(push_allowed_hosts=()) as agent:
        first = (await agent.post(send(text_message("a", skill="collect")))).json()["result"]
        follow_up = {**text_message("b", task_id=first["id"]), **message_fields}
        body = {"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {"message": follow_up, **extra}}
        refused = await agent.post(body)
        got = (await agent.post({"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"id": first["id"]}})).json()
    assert error_code(refused) == -32602, (case, refused.text)
    assert got["result"]["status"]["state"] == "input-required", case
    assert got["result"]["history"] == first["history"], case
