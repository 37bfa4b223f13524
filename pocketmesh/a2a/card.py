"""``generate_agent_card``: the agent card served at ``/.well-known/agent-card.json``."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
)
from google.protobuf.json_format import ParseDict

from ..node import BaseNode
from . import card_fields

SkillSpec = AgentSkill | Mapping[str, Any] | str
"""A skill as an ``AgentSkill``, a dict (``id``, ``name``, ``description``, ``tags``, ...), or an id."""

_DEFAULT_MODES = ["text/plain", "application/json"]


def generate_agent_card(
    *,
    name: str,
    url: str,
    version: str = "1.0.0",
    skills: Iterable[SkillSpec] = (),
    description: str = "",
    capabilities: AgentCapabilities | Mapping[str, Any] | None = None,
    default_input_modes: Iterable[str] = _DEFAULT_MODES,
    default_output_modes: Iterable[str] = _DEFAULT_MODES,
    provider: Mapping[str, str] | None = None,
    documentation_url: str | None = None,
    icon_url: str | None = None,
    additional_interfaces: Iterable[Mapping[str, Any]] = (),
    security_schemes: Mapping[str, Any] | None = None,
    security: Iterable[Any] = (),
    signatures: Iterable[Mapping[str, Any]] = (),
    supports_authenticated_extended_card: bool | None = None,
) -> AgentCard:
    """An agent card whose JSON-RPC interface is ``url`` (the endpoint's full URL, used as given).

    Streaming and push notifications are on unless ``capabilities`` says otherwise.
    ``additional_interfaces`` (``[{"protocolBinding": "GRPC", "url": "host:50051"}]``) follow
    the JSON-RPC one in ``supportedInterfaces``; ``security_schemes`` (name -> scheme) and
    ``security`` (requirements) take the A2A JSON shapes, 1.0 or 0.3; ``signatures`` are the
    card's JWS signatures; ``supports_authenticated_extended_card`` sets
    ``capabilities.extendedAgentCard``. See :mod:`pocketmesh.a2a.card_fields`.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(
            f"url must be the JSON-RPC endpoint's full URL, got {url!r}; "
            f"e.g. url='http://127.0.0.1:4000/a2a'."
        )
    card = AgentCard(
        name=name,
        description=description or name,
        version=version,
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=_capabilities(capabilities),
        default_input_modes=list(default_input_modes),
        default_output_modes=list(default_output_modes),
        skills=[_skill(s) for s in skills],
    )
    if provider:
        card.provider.CopyFrom(AgentProvider(organization=provider.get("organization", ""), url=provider.get("url", "")))
    card_fields.set_urls(card, icon_url=icon_url, documentation_url=documentation_url)
    card_fields.add_interfaces(card, additional_interfaces)
    card_fields.set_security_schemes(card, security_schemes or {})
    card_fields.add_security(card, security)
    card_fields.add_signatures(card, signatures)
    if supports_authenticated_extended_card is not None:
        card.capabilities.extended_agent_card = bool(supports_authenticated_extended_card)
    return card


def skills_for_flows(flows: Mapping[str, BaseNode]) -> list[AgentSkill]:
    """One skill per flow: id and name from the key, described by :func:`flow_description`."""
    return [
        AgentSkill(id=skill_id, name=skill_id, description=flow_description(flow, skill_id), tags=[skill_id])
        for skill_id, flow in flows.items()
    ]


def flow_description(flow: BaseNode, fallback: str) -> str:
    """What a flow does, in a line: its ``description`` attribute if set, else the first paragraph
    of its own class's docstring, else its name; ``fallback`` for a library class under its
    default name. A library class's docstring (``Flow``'s, say) never describes a user's flow."""
    described = getattr(flow, "description", None)
    if isinstance(described, str) and described.strip():
        return described.strip()
    cls = type(flow)
    if not _library_class(cls):
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        if doc:
            return " ".join(doc.split("\n\n")[0].split())
    if flow.name and (not _library_class(cls) or flow.name != cls.__name__):
        return flow.name
    return fallback


def _library_class(cls: type) -> bool:
    module = cls.__module__ or ""
    return module == "pocketmesh" or (module.startswith("pocketmesh.") and not module.startswith("pocketmesh.examples"))


def check_card(card: AgentCard) -> None:
    """Refuse a card missing fields the A2A spec requires (the SDK would warn on every request
    that serves it), naming them."""
    from a2a.utils.errors import InvalidParamsError
    from a2a.utils.proto_utils import validate_proto_required_fields

    try:
        validate_proto_required_fields(card)
    except InvalidParamsError as exc:
        missing = [str(problem.get("field")) for problem in (exc.data or {}).get("errors", [])]
        raise ValueError(
            f"agent card {card.name!r} lacks fields the A2A spec requires: {', '.join(missing)}; "
            f"make it with generate_agent_card(name=..., url=..., version=...), or set them."
        ) from None


def _capabilities(value: AgentCapabilities | Mapping[str, Any] | None) -> AgentCapabilities:
    if value is None:
        return AgentCapabilities(streaming=True, push_notifications=True)
    if isinstance(value, AgentCapabilities):
        return value
    if isinstance(value, Mapping):
        caps = AgentCapabilities(streaming=True, push_notifications=True)
        ParseDict(dict(value), caps)
        return caps
    raise TypeError(
        f"capabilities must be an AgentCapabilities or a dict such as {{'streaming': True}}, "
        f"got {value!r:.80} ({type(value).__name__})."
    )


def _skill(value: SkillSpec) -> AgentSkill:
    if isinstance(value, AgentSkill):
        return value
    if isinstance(value, str):
        return AgentSkill(id=value, name=value, description=value, tags=[value])
    if isinstance(value, Mapping):
        if not value.get("id"):
            raise ValueError(f"a skill needs an 'id', got {dict(value)!r:.80}; e.g. {{'id': 'greet', 'name': 'Greet'}}.")
        spec = {"name": value["id"], "description": value.get("name") or value["id"], "tags": [value["id"]], **value}
        skill = AgentSkill()
        ParseDict(spec, skill, ignore_unknown_fields=True)
        return skill
    raise TypeError(f"a skill must be an AgentSkill, a dict or a skill id, got {value!r:.80} ({type(value).__name__}).")


def card_routes(card: AgentCard, *, cache_control: str | None) -> list[Any]:
    """The SDK's agent card route, its answers also carrying ``Last-Modified``: the time the app
    was built, which is when this card took its form (it does not change while the app runs)."""
    import email.utils

    from a2a.server.routes import create_agent_card_routes
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    modified = email.utils.formatdate(usegmt=True)
    routes: list[Any] = []
    for route in create_agent_card_routes(card, cache_control=cache_control):
        inner = route.endpoint

        async def endpoint(request: Request, inner: Any = inner) -> Response:
            response: Response = await inner(request)
            response.headers["Last-Modified"] = modified
            return response

        routes.append(Route(route.path, endpoint=endpoint, methods=list(route.methods or ["GET"])))
    return routes
