"""Secret response headers (Set-Cookie, API keys) never reach a cassette, whatever their case,
from clients that keep the server's header case: requests and aiohttp."""

from __future__ import annotations

import re

import pytest

from pocketmesh_testing.doubles.loopback import free_port

SECRETS = ("c00kie-a1", "c00kie-b2", "k3y-from-server", "org-s3cret")

USER_TESTS = """
import os
import aiohttp, pytest, requests
from pocketmesh_testing.doubles.llm_replies import RawReply, render
from pocketmesh_testing.doubles.loopback import LoopbackServer

HEADERS = {{
    "Set-Cookie": "session=c00kie-a1; Path=/; HttpOnly",
    "SET-COOKIE": "tracking=c00kie-b2",
    "X-Api-Key": "k3y-from-server",
    "OpenAI-Organization": "org-s3cret",
    "X-Request-Id": "req-kept-1",
}}


@pytest.fixture
def upstream():
    if os.environ.get("UPSTREAM") != "1":
        yield None  # replay: nothing listens on the port any more
        return
    def handler(method, path, headers, body):
        return render(RawReply({{"ok": path}}, headers=HEADERS), dialect="openai", model="m", stream=False)
    server = LoopbackServer(handler, port={port})
    yield server
    server.close()


@pytest.mark.llm_cassette
def test_requests(upstream, llm_cassette):
    response = requests.post("http://127.0.0.1:{port}/v1/requests", json={{"model": "m"}})
    assert response.json() == {{"ok": "/v1/requests"}}
    if upstream is not None:
        assert "session=c00kie-a1" in response.headers["set-cookie"]  # the client itself got them
    assert llm_cassette.interactions == 1


@pytest.mark.llm_cassette
async def test_aiohttp(upstream, llm_cassette):
    async with aiohttp.ClientSession() as session:
        async with session.post("http://127.0.0.1:{port}/v1/aiohttp", json={{"model": "m"}}) as response:
            assert await response.json() == {{"ok": "/v1/aiohttp"}}
            assert response.headers.get("X-Api-Key") == ("k3y-from-server" if upstream else None)
            assert response.headers["X-Request-Id"] == "req-kept-1"
    assert llm_cassette.interactions == 1
"""


@pytest.mark.parametrize("client", ["requests", "aiohttp"])
def test_secret_response_headers_are_scrubbed_whatever_their_case(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    pytester.makepyfile(test_user=USER_TESTS.format(port=free_port()))
    monkeypatch.setenv("UPSTREAM", "1")
    pytester.runpytest_inprocess("-q", "-k", client).assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_user" / f"test_{client}.yaml").read_text()
    assert f"/v1/{client}" in text and "req-kept-1" in text  # recorded, other headers kept
    for secret in SECRETS:
        assert secret not in text, f"{secret} was written to the {client} cassette:\n{text}"
    names = {name.lower() for name in re.findall(r"^\s{4,}([A-Za-z0-9-]+):", text, flags=re.M)}
    assert not names & {"set-cookie", "x-api-key", "openai-organization"}, names
    # The scrubbed recording replays (JSON bodies, aiohttp's json= included, match by structure).
    monkeypatch.delenv("UPSTREAM")
    pytester.runpytest_inprocess("-q", "-k", client, "--pocketmesh-record-mode=none").assert_outcomes(passed=1)
