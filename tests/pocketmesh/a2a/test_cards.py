"""The agent card's options, and the extended card served to authenticated callers on each transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from a2a.client.errors import A2AClientError
from a2a.types import AgentCard, AgentSkill
from a2a.utils.errors import ExtendedAgentCardNotConfiguredError
from google.protobuf.json_format import MessageToDict

from pocketmesh.a2a import BearerAuth, create_a2a_client, generate_agent_card

from .conftest import Served, free_port, make_flows, serving

TRANSPORTS = ["JSONRPC", "HTTP+JSON", "GRPC"]
URL = "https://agent.example.com/a2a"


def test_the_card_takes_the_a2a_options() -> None:
    card = generate_agent_card(
        name="docs",
        url=URL,
        icon_url="https://agent.example.com/icon.png",
        documentation_url="https://agent.example.com/docs",
        provider={"organization": "Example", "url": "https://example.com"},
        additional_interfaces=[{"protocolBinding": "GRPC", "url": "agent.example.com:443"}],
        security_schemes={
            "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}},
            "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},  # the 0.3 shape
        },
        security=[{"bearer": []}, {"schemes": {"key": {"list": []}}}],
        signatures=[{"protected": "eyJhbGciOiJFUzI1NiJ9", "signature": "c2lnbmF0dXJl"}],
        supports_authenticated_extended_card=True,
    )
    data = MessageToDict(card)
    assert (data["iconUrl"], data["documentationUrl"]) == ("https://agent.example.com/icon.png", "https://agent.example.com/docs")
    assert data["provider"] == {"organization": "Example", "url": "https://example.com"}
    assert data["supportedInterfaces"] == [
        {"url": URL, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": "agent.example.com:443", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
    ]
    assert data["securitySchemes"] == {
        "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}},
        "key": {"apiKeySecurityScheme": {"location": "header", "name": "X-API-Key"}},
    }
    assert data["securityRequirements"] == [{"schemes": {"bearer": {}}}, {"schemes": {"key": {}}}]
    assert data["signatures"] == [{"protected": "eyJhbGciOiJFUzI1NiJ9", "signature": "c2lnbmF0dXJl"}]
    assert data["capabilities"] == {"streaming": True, "pushNotifications": True, "extendedAgentCard": True}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"icon_url": "icon.png"}, "icon_url must be an absolute http"),
        ({"additional_interfaces": [{"url": "x:1"}]}, "needs 'protocolBinding' and 'url'"),
        ({"additional_interfaces": {"protocolBinding": "GRPC"}}, "must be a list of interfaces"),
        ({"security_schemes": {"bearer": {"type": "carrier-pigeon"}}}, "'bearer' is not an A2A security scheme"),
        ({"security_schemes": {"bearer": {}}}, "names no scheme"),
        ({"security": [{"bearer": []}]}, r"names \['bearer'\] but the card declares only \[\]"),
        ({"signatures": [{"signature": "x"}]}, "needs 'protected' and 'signature'"),
    ],
)
def test_bad_card_options_say_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        generate_agent_card(name="docs", url=URL, **options)


def extended(public: AgentCard) -> AgentCard:
    card = AgentCard()
    card.CopyFrom(public)
    card.skills.append(AgentSkill(id="vip", name="vip", description="for members", tags=["vip"]))
    return card


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def guarded() -> AsyncIterator[Served]:
    auth = BearerAuth(tokens={"alice-token": "alice"})
    async with serving(make_flows(), grpc_port=free_port(), auth=auth, extended_agent_card=extended) as served:
        yield served


async def test_the_extended_card_is_served_to_authenticated_callers(guarded: Served, transport: str) -> None:
    async with httpx.AsyncClient() as http:
        public = (await http.get(f"{guarded.base_url}/.well-known/agent-card.json")).json()
    assert public["capabilities"]["extendedAgentCard"] is True
    assert "vip" not in [s["id"] for s in public["skills"]]
    async with await create_a2a_client(guarded.base_url, transport=transport, auth_token="alice-token") as client:
        card = await client.get_extended_card()
    assert [s.id for s in card.skills][-1] == "vip"
    assert [(i.protocol_binding, i.protocol_version) for i in card.supported_interfaces] == [
        ("JSONRPC", "1.0"), ("HTTP+JSON", "1.0"), ("GRPC", "1.0"), ("JSONRPC", "0.3")
    ]
    assert "bearer" in card.security_schemes
    async with await create_a2a_client(guarded.base_url, transport=transport) as anonymous:
        with pytest.raises(A2AClientError, match="401|UNAUTHENTICATED"):
            await anonymous.get_extended_card()


async def test_a_declared_but_missing_extended_card_is_an_error(transport: str) -> None:
    options = {"supports_authenticated_extended_card": True}
    async with serving(make_flows(), grpc_port=free_port(), card_options=options) as server:
        async with await create_a2a_client(server.base_url, transport=transport) as client:
            with pytest.raises(ExtendedAgentCardNotConfiguredError):
                await client.get_extended_card()


async def test_the_extended_card_answers_the_0_3_method_too(guarded: Served) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "agent/getAuthenticatedExtendedCard"}
    async with httpx.AsyncClient() as http:
        refused = await http.post(guarded.rpc_url, json=body)
        answered = await http.post(guarded.rpc_url, json=body, headers={"Authorization": "Bearer alice-token"})
    assert refused.status_code == 401
    card = answered.json()["result"]
    assert [s["id"] for s in card["skills"]][-1] == "vip"
    assert card["supportsAuthenticatedExtendedCard"] is True
