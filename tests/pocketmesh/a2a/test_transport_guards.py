"""What each transport refuses before the request handler, and how it says so."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import httpx
import pytest
import pytest_asyncio
from a2a.types import SendMessageRequest, a2a_pb2_grpc
from google.protobuf.json_format import ParseDict
from google.rpc import error_details_pb2, status_pb2

from pocketmesh.a2a import BearerAuth

from .conftest import Served, free_port, make_flows, serving

HEADERS = {"Authorization": "Bearer t-1", "A2A-Version": "1.0"}


def a_message() -> dict[str, object]:
    return {"message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": "hi"}]}}


@pytest_asyncio.fixture
async def guarded() -> AsyncIterator[Served]:
    async with serving(make_flows(), grpc_port=free_port(), auth=BearerAuth({"t-1": "alice"}), max_body_size=4000) as served:
        yield served


async def test_rest_refusals_are_aip_193_errors(guarded: Served) -> None:
    send = f"{guarded.base_url}/a2a/rest/message:send"
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(send, json=a_message(), headers={"A2A-Version": "1.0"})
        declared = await http.post(send, content=b"{" + b" " * 5000 + b"}", headers={**HEADERS, "content-type": "application/json"})

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b" " * 1000

        streamed = await http.post(send, content=chunks(), headers={**HEADERS, "content-type": "application/json"})
        plain_text = await http.post(send, content=json.dumps(a_message()).encode(), headers={**HEADERS, "content-type": "text/plain"})
        accepted = await http.post(send, json=a_message(), headers=HEADERS)
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, 'Bearer realm="a2a"')
    assert anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert "accepts at most 4000" in declared.json()["error"]["message"]
    assert "more than 4000" in streamed.json()["error"]["message"]
    assert plain_text.status_code == 415
    assert plain_text.json()["error"]["details"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    assert accepted.status_code == 200 and accepted.headers["content-type"] == "application/json"
    assert accepted.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_json_rpc_wants_json_and_answers_on_its_url_with_a_slash(guarded: Served) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": a_message()}
    async with httpx.AsyncClient() as http:
        plain_text = await http.post(guarded.rpc_url, content=json.dumps(body), headers={**HEADERS, "content-type": "text/plain"})
        slashed = await http.post(f"{guarded.rpc_url}/", json=body, headers=HEADERS)
    assert plain_text.json()["error"]["code"] == -32005
    assert slashed.status_code == 200 and slashed.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def error_info(error: grpc.aio.AioRpcError) -> str:
    details = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return info.reason


async def test_grpc_refusals_use_the_specification_s_status_codes(guarded: Served) -> None:
    grpc_port = guarded.grpc_port
    request = ParseDict(a_message(), SendMessageRequest())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = a2a_pb2_grpc.A2AServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.SendMessage(request)
        with pytest.raises(grpc.aio.AioRpcError) as future:
            await stub.SendMessage(request, metadata=[("authorization", "Bearer t-1"), ("a2a-version", "99.0")])
        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            big = ParseDict({"message": {**a_message()["message"], "parts": [{"text": "x" * 5000}]}}, SendMessageRequest())  # type: ignore[dict-item]
            await stub.SendMessage(big, metadata=[("authorization", "Bearer t-1")])
        answer = await stub.SendMessage(request, metadata=[("authorization", "Bearer t-1"), ("a2a-version", "1.0")])
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authentication required" in (anonymous.value.details() or "")
    assert (future.value.code(), error_info(future.value)) == (grpc.StatusCode.UNIMPLEMENTED, "VERSION_NOT_SUPPORTED")
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert answer.task.status.state == 3  # TASK_STATE_COMPLETED


async def test_mounted_on_an_existing_app_http_json_sits_beside_json_rpc() -> None:
    from starlette.applications import Starlette

    from pocketmesh import InMemoryPersistence
    from pocketmesh.a2a import a2a_server_handler, create_a2a_client, generate_agent_card
    from pocketmesh_testing.doubles.asgi import Lifespan, StreamingASGITransport

    card = generate_agent_card(name="mounted", url="http://agent.test/agents/one")
    app = a2a_server_handler(make_flows(), agent_card=card, persistence=InMemoryPersistence())(Starlette(), "/agents/one")
    lifespan = Lifespan(app)
    await lifespan.start()
    try:
        async with httpx.AsyncClient(transport=StreamingASGITransport(app)) as http:
            async with await create_a2a_client("http://agent.test", httpx_client=http, transport="rest") as client:
                reply = await client.send_message("hi")
                interfaces = [(i.protocol_binding, i.url) for i in client.card.supported_interfaces]
    finally:
        await lifespan.stop()
    assert interfaces == [("JSONRPC", "http://agent.test/agents/one"), ("HTTP+JSON", "http://agent.test/agents/one/rest")]
    assert (reply.state, reply.text) == ("completed", "echo: hi")
