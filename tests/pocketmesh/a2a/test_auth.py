"""Authentication declared in the card and enforced on JSON-RPC; tasks scoped to their owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from a2a.client.errors import A2AClientError
from starlette.requests import Request

from pocketmesh import InMemoryPersistence, load_run_record
from pocketmesh.a2a import ApiKeyAuth, BearerAuth, PocketMeshTaskStore, create_a2a_app, create_a2a_client

from .conftest import Served, error_code, in_process, make_flows, serving, text_message

TOKENS = {"token-a": "alice", "token-b": "bob"}
V1 = {"A2A-Version": "1.0"}


def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def guarded() -> AsyncIterator[Served]:
    async with serving(make_flows(), auth=BearerAuth(tokens=TOKENS)) as served:
        yield served


async def test_card_is_public_and_declares_the_bearer_scheme(guarded: Served) -> None:
    async with httpx.AsyncClient() as http:
        card = (await http.get(f"{guarded.base_url}/.well-known/agent-card.json")).json()
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}]


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": "token-a"}, {"Authorization": "Basic token-a"}, {"Authorization": "Bearer"}])
async def test_missing_or_wrong_credentials_get_401_and_persist_nothing(guarded: Served, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(guarded.rpc_url, json=rpc("message/send", {"message": text_message("x")}), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32600
    assert "authentication required" in body["error"]["message"]
    assert await guarded.persistence.list_runs() == []


async def test_client_sends_the_token_and_the_task_keeps_its_owner(guarded: Served) -> None:
    async with await create_a2a_client(guarded.base_url, auth_token="token-a") as client:
        reply = await client.send_message("hi")
        assert (reply.state, reply.text) == ("completed", "echo: hi")
        assert (await client.get_task(reply.task_id)).state == "completed"
    record = await guarded.persistence.load_run(PocketMeshTaskStore.run_id_for(reply.task_id, "alice"))
    assert record["owner"] == "alice"


async def test_client_without_the_token_is_refused(guarded: Served) -> None:
    async with await create_a2a_client(guarded.base_url) as client:
        with pytest.raises(A2AClientError, match="401"):
            await client.send_message("hi")
    async with await create_a2a_client(guarded.base_url, headers={"Authorization": "Bearer nope"}) as client:
        with pytest.raises(A2AClientError, match="401"):
            await client.send_message("hi")
    assert await guarded.persistence.list_runs() == []


async def test_another_owners_task_is_answered_as_unknown(guarded: Served) -> None:
    async with await create_a2a_client(guarded.base_url, auth_token="token-a") as alice:
        first = await alice.send_message("secret", skill="collect")
    assert first.state == "input-required"
    flow_before = await load_run_record(guarded.persistence, first.task_id)
    task_before = await guarded.persistence.load_run(PocketMeshTaskStore.run_id_for(first.task_id, "alice"))
    unknown = "00000000-0000-0000-0000-000000000000"
    probes = [
        ("tasks/get", lambda t: {"id": t}, {}),
        ("GetTask", lambda t: {"id": t}, V1),
        ("message/send", lambda t: {"message": text_message("steal", task_id=t)}, {}),
        ("SendMessage", lambda t: {"message": {"role": "ROLE_USER", "messageId": "m-x", "taskId": t, "parts": [{"text": "steal"}]}}, V1),
        ("tasks/cancel", lambda t: {"id": t}, {}),
        ("CancelTask", lambda t: {"id": t}, V1),
        ("SubscribeToTask", lambda t: {"id": t}, V1),
        ("tasks/resubscribe", lambda t: {"id": t}, {}),
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        for method, params, headers in probes:
            theirs = await http.post(guarded.rpc_url, json=rpc(method, params(first.task_id)), headers={**bearer("token-b"), **headers})
            nobodys = await http.post(guarded.rpc_url, json=rpc(method, params(unknown)), headers={**bearer("token-b"), **headers})
            assert theirs.status_code == nobodys.status_code == 200, method
            assert error_code(theirs) == error_code(nobodys) == -32001, (method, theirs.text)
            assert "secret" not in theirs.text and "alice" not in theirs.text
            assert theirs.text.replace(first.task_id, "<id>") == nobodys.text.replace(unknown, "<id>"), method
        listed = await http.post(guarded.rpc_url, json=rpc("ListTasks", {}), headers={**bearer("token-b"), **V1})
    assert listed.json()["result"]["tasks"] == []
    # Nothing of alice's moved: the flow did not run, the task is as it was.
    flow_after = await load_run_record(guarded.persistence, first.task_id)
    assert flow_before is not None and flow_after is not None
    assert flow_after.shared == flow_before.shared and flow_after.status == "input-required"
    assert await guarded.persistence.load_run(PocketMeshTaskStore.run_id_for(first.task_id, "alice")) == task_before
    async with await create_a2a_client(guarded.base_url, auth_token="token-a") as alice:
        assert (await alice.get_task(first.task_id)).state == "input-required"
        assert (await alice.send_message("more", task_id=first.task_id)).text == "seen 2"
        assert (await alice.cancel_task(first.task_id)).state == "canceled"


async def test_api_key_auth_is_declared_and_enforced() -> None:
    auth = ApiKeyAuth(keys={"k-1": "carol"}, header="X-Agent-Key")
    async with serving(make_flows(), auth=auth) as served:
        async with httpx.AsyncClient() as http:
            card = (await http.get(f"{served.base_url}/.well-known/agent-card.json")).json()
            refused = await http.post(served.rpc_url, json=rpc("tasks/get", {"id": "x"}), headers={"X-API-Key": "k-1"})
        async with await create_a2a_client(served.base_url, headers={"X-Agent-Key": "k-1"}) as client:
            reply = await client.send_message("hi")
    assert card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"] == {
        "location": "header", "name": "X-Agent-Key", "description": "Send the API key in the 'X-Agent-Key' header."
    }
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'ApiKey header="X-Agent-Key"'
    assert reply.text == "echo: hi"
    record = await served.persistence.load_run(PocketMeshTaskStore.run_id_for(reply.task_id, "carol"))
    assert record["owner"] == "carol"


async def test_callable_auth_and_owner_scoping_in_process() -> None:
    async def authenticate(request: Request) -> str | None:
        user = request.headers.get("x-user", "")
        return user if user in ("dave", "erin") else None

    async with in_process(auth=authenticate) as agent:
        started = await agent.post(rpc("message/send", {"message": text_message("x", skill="collect")}), headers={"x-user": "dave"})
        task_id = started.json()["result"]["id"]
        mine = await agent.post(rpc("tasks/get", {"id": task_id}), headers={"x-user": "dave"})
        theirs = await agent.post(rpc("tasks/get", {"id": task_id}), headers={"x-user": "erin"})
        nobody = await agent.post(rpc("tasks/get", {"id": task_id}), headers={"x-user": "mallory"})
    assert mine.json()["result"]["status"]["state"] == "input-required"
    assert error_code(theirs) == -32001
    assert nobody.status_code == 401


async def test_callable_returning_a_non_string_is_a_clear_error() -> None:
    async with in_process(auth=lambda request: 42) as agent:
        with pytest.raises(TypeError, match="returned 42 .int.; it must return the caller's owner as a non-empty str"):
            await agent.post(rpc("tasks/get", {"id": "x"}))


def test_bad_auth_arguments_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match="BearerAuth\\(tokens=...\\) must be a non-empty dict"):
        BearerAuth(tokens={})
    with pytest.raises(ValueError, match="owner must be a non-empty str"):
        ApiKeyAuth(keys={"k": ""})
    with pytest.raises(TypeError, match="auth must be BearerAuth"):
        create_a2a_app(make_flows(), persistence=InMemoryPersistence(), auth="token-a")  # type: ignore[arg-type]


async def test_without_auth_everything_shares_one_owner(agent: Any) -> None:
    started = await agent.post(rpc("message/send", {"message": text_message("x")}))
    task_id = started.json()["result"]["id"]
    record = await agent.persistence.load_run(PocketMeshTaskStore.run_id_for(task_id))
    assert record["owner"] == ""


async def test_an_auth_callable_that_raises_fails_closed() -> None:
    def authenticate(request: Request) -> str | None:
        raise KeyError("no such session")

    async with in_process(auth=authenticate) as agent:
        response = await agent.post(rpc("message/send", {"message": text_message("x")}))
        assert await agent.persistence.list_runs() == []
    assert response.status_code == 401 and error_code(response) == -32600

