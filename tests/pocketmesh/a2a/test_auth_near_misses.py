"""Credentials that almost match: a prefix, an extension or another case of a valid token or
API key is refused with 401, and nothing of the request is saved."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pocketmesh.a2a import ApiKeyAuth, BearerAuth, PocketMeshTaskStore

from .conftest import make_flows, serving, text_message

TOKEN = "tok-3f9a7c"
API_KEY = "key-81d2e4"
NEAR_TOKENS = ["tok-3f9a7", "tok-", "t", "tok-3f9a7c0", "tok-3f9a7c-extra", "TOK-3F9A7C", "xtok-3f9a7c"]
NEAR_KEYS = ["key-81d2e", "key", "key-81d2e4f", "key-81d2e4 key-81d2e4", "KEY-81D2E4"]


def send(text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": text_message(text)}}


async def _refused_then_accepted(auth: Any, header: str, near: list[str], valid: str, owner: str) -> None:
    async with serving(make_flows(), auth=auth) as served:
        async with httpx.AsyncClient(timeout=10) as http:
            for candidate in near:
                value = f"Bearer {candidate}" if header == "Authorization" else candidate
                response = await http.post(served.rpc_url, json=send("steal"), headers={header: value})
                assert response.status_code == 401, (candidate, response.text)
                assert response.json()["error"]["code"] == -32600, candidate
            # Nothing of the refused requests reached a flow run or the task store.
            assert await served.persistence.list_runs() == []
            value = f"Bearer {valid}" if header == "Authorization" else valid
            accepted = await http.post(served.rpc_url, json=send("hi"), headers={header: value})
        assert accepted.status_code == 200, accepted.text
        task_id = accepted.json()["result"]["id"]
        record = await served.persistence.load_run(PocketMeshTaskStore.run_id_for(task_id, owner))
        assert record["owner"] == owner


async def test_a_prefix_or_extension_of_a_bearer_token_is_refused() -> None:
    auth = BearerAuth(tokens={TOKEN: "alice", "other-token": "bob"})
    await _refused_then_accepted(auth, "Authorization", NEAR_TOKENS, TOKEN, "alice")


async def test_a_prefix_or_extension_of_an_api_key_is_refused() -> None:
    auth = ApiKeyAuth(keys={API_KEY: "carol", "key-other": "dave"}, header="X-Agent-Key")
    await _refused_then_accepted(auth, "X-Agent-Key", NEAR_KEYS, API_KEY, "carol")


@pytest.mark.parametrize("candidate", ["tok-3f9a7", "tok-3f9a7c0"])
async def test_a_near_miss_never_authenticates_in_the_authenticator_itself(candidate: str) -> None:
    from starlette.requests import Request

    scope = {"type": "http", "headers": [(b"authorization", f"Bearer {candidate}".encode())]}
    assert await BearerAuth(tokens={TOKEN: "alice"}).authenticate(Request(scope)) is None
    assert await BearerAuth(tokens={TOKEN: "alice"}).authenticate(
        Request({"type": "http", "headers": [(b"authorization", f"Bearer {TOKEN}".encode())]})
    ) == "alice"
