"""The card and the endpoint over real HTTP: the RPC path answers with a trailing slash too, and
the card is sent with caching headers."""

from __future__ import annotations

import email.utils

import httpx
from starlette.applications import Starlette

from pocketmesh import InMemoryPersistence
from pocketmesh.a2a import a2a_server_handler

from .conftest import make_flows, serving, text_message


def send(text: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": text_message(text)}}


async def test_the_rpc_path_with_a_trailing_slash_is_answered_like_without() -> None:
    async with serving(make_flows()) as served, httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
        plain = await http.post(served.rpc_url, json=send("plain"))
        slashed = await http.post(served.rpc_url + "/", json=send("slashed"))
        streamed = await http.post(
            served.rpc_url + "/",
            json={**send("streamed"), "method": "message/stream"},
            headers={"Accept": "text/event-stream"},
        )
    assert plain.status_code == slashed.status_code == streamed.status_code == 200
    assert slashed.json()["result"]["status"]["message"]["parts"][0]["text"] == "echo: slashed"
    assert "echo: streamed" in streamed.text


async def test_the_card_is_sent_with_cache_control_an_etag_and_last_modified() -> None:
    async with serving(make_flows()) as served, httpx.AsyncClient(timeout=10) as http:
        card = await http.get(f"{served.base_url}/.well-known/agent-card.json")
        again = await http.get(f"{served.base_url}/.well-known/agent-card.json", headers={"If-None-Match": card.headers["etag"]})
    assert card.status_code == 200 and card.headers["cache-control"] == "public, max-age=300"
    assert again.status_code == 304 and again.headers["cache-control"] == "public, max-age=300"
    # The card took its form when the app was built: an HTTP date, the same on every answer.
    modified = email.utils.parsedate_to_datetime(card.headers["last-modified"])
    assert modified.tzinfo is not None and again.headers["last-modified"] == card.headers["last-modified"]


async def test_a_mounted_endpoint_answers_with_a_trailing_slash_and_its_own_cache_control() -> None:
    app = a2a_server_handler(make_flows(), persistence=InMemoryPersistence(), card_cache_control="no-cache")(Starlette(), "/agent")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent.test") as http:
        slashed = await http.post("/agent/", json=send("mounted"))
        card = await http.get("/.well-known/agent-card.json")
    assert slashed.json()["result"]["status"]["message"]["parts"][0]["text"] == "echo: mounted"
    assert card.headers["cache-control"] == "no-cache"
