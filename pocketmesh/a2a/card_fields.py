"""The optional fields of an agent card, from plain Python values in the A2A JSON shapes.

Used by :func:`~pocketmesh.a2a.generate_agent_card`; each bad value raises ``ValueError`` /
``TypeError`` naming the argument, the value and a correct example.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from a2a.compat.v0_3 import types as types_v03
from a2a.compat.v0_3.conversions import to_core_security_scheme
from a2a.types import AgentCard, AgentCardSignature, AgentInterface, SecurityRequirement, SecurityScheme
from google.protobuf.json_format import ParseDict, ParseError
from pydantic import ValidationError

_SCHEME_EXAMPLE = "{'bearer': {'httpAuthSecurityScheme': {'scheme': 'Bearer'}}} or {'bearer': {'type': 'http', 'scheme': 'bearer'}}"


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def set_urls(card: AgentCard, *, icon_url: str | None, documentation_url: str | None) -> None:
    """``iconUrl`` and ``documentationUrl``: absolute http(s) URLs."""
    for name, value in (("icon_url", icon_url), ("documentation_url", documentation_url)):
        if value is None or value == "":
            continue
        if not _is_url(value):
            raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r:.80}; e.g. {name}='https://example.com/agent'.")
        setattr(card, name, value)


def add_interfaces(card: AgentCard, interfaces: Iterable[Mapping[str, Any] | AgentInterface]) -> None:
    """Append ``{"protocolBinding", "url"}`` entries (``protocolVersion``, ``tenant`` optional)."""
    if isinstance(interfaces, (str, bytes, Mapping)):
        raise TypeError(
            f"additional_interfaces must be a list of interfaces, got {interfaces!r:.80}; "
            f"e.g. [{{'protocolBinding': 'HTTP+JSON', 'url': 'https://agent.example.com/a2a/rest'}}]."
        )
    for entry in interfaces:
        if isinstance(entry, AgentInterface):
            card.supported_interfaces.append(entry)
            continue
        if not isinstance(entry, Mapping) or not entry.get("protocolBinding") or not entry.get("url"):
            raise ValueError(
                f"each additional interface needs 'protocolBinding' and 'url', got {entry!r:.80}; "
                f"e.g. {{'protocolBinding': 'GRPC', 'url': 'agent.example.com:50051'}}."
            )
        interface = AgentInterface(protocol_version="1.0")
        try:
            ParseDict(dict(entry), interface)
        except ParseError as error:
            raise ValueError(f"additional interface {dict(entry)!r:.80} is not an A2A AgentInterface: {error}") from error
        card.supported_interfaces.append(interface)


def set_security_schemes(card: AgentCard, schemes: Mapping[str, Any]) -> None:
    """``securitySchemes``: name -> scheme, in the 1.0 JSON shape or the 0.3 (OpenAPI) one."""
    if not isinstance(schemes, Mapping):
        raise TypeError(f"security_schemes must be a dict of name -> scheme, got {schemes!r:.80}; e.g. {_SCHEME_EXAMPLE}.")
    for name, value in schemes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"security scheme names must be non-empty strings, got {name!r:.40}; e.g. {_SCHEME_EXAMPLE}.")
        card.security_schemes[name].CopyFrom(_scheme(name, value))


def _scheme(name: str, value: Any) -> SecurityScheme:
    if isinstance(value, SecurityScheme):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"security scheme {name!r} must be a dict, got {value!r:.80}; e.g. {_SCHEME_EXAMPLE}.")
    try:
        if "type" in value:
            return to_core_security_scheme(types_v03.SecurityScheme.model_validate(dict(value)))
        scheme = SecurityScheme()
        ParseDict(dict(value), scheme)
    except (ParseError, ValidationError) as error:
        raise ValueError(f"security scheme {name!r} is not an A2A security scheme ({error}); e.g. {_SCHEME_EXAMPLE}.") from None
    if scheme.WhichOneof("scheme") is None:
        raise ValueError(f"security scheme {name!r} names no scheme, got {dict(value)!r:.80}; e.g. {_SCHEME_EXAMPLE}.")
    return scheme


def add_security(card: AgentCard, requirements: Iterable[Any]) -> None:
    """``securityRequirements``: each ``{"schemes": {name: {"list": [scopes]}}}`` (1.0) or
    ``{name: [scopes]}`` (0.3); every name must be a declared scheme."""
    if isinstance(requirements, (str, bytes, Mapping)):
        raise TypeError(f"security must be a list of requirements, got {requirements!r:.80}; e.g. security=[{{'bearer': []}}].")
    for entry in requirements:
        requirement = SecurityRequirement()
        if isinstance(entry, SecurityRequirement):
            requirement = entry
        elif isinstance(entry, Mapping) and isinstance(entry.get("schemes"), Mapping):
            try:
                ParseDict(dict(entry), requirement)
            except ParseError as error:
                raise ValueError(f"security requirement {dict(entry)!r:.80} is not valid: {error}") from None
        elif isinstance(entry, Mapping) and all(isinstance(v, (list, tuple)) for v in entry.values()):
            for scheme_name, scopes in entry.items():
                requirement.schemes[str(scheme_name)].list.extend(str(s) for s in scopes)
        else:
            raise ValueError(
                f"a security requirement maps scheme names to scope lists, got {entry!r:.80}; "
                f"e.g. {{'bearer': []}} or {{'schemes': {{'bearer': {{'list': []}}}}}}."
            )
        unknown = [n for n in requirement.schemes if n not in card.security_schemes]
        if unknown:
            raise ValueError(
                f"security requirement names {unknown} but the card declares only {sorted(card.security_schemes)}; "
                f"add them to security_schemes."
            )
        card.security_requirements.append(requirement)


def add_signatures(card: AgentCard, signatures: Iterable[Mapping[str, Any] | AgentCardSignature]) -> None:
    """``signatures``: JWS signatures of the card, each ``{"protected", "signature", "header"?}``."""
    if isinstance(signatures, (str, bytes, Mapping)):
        raise TypeError(f"signatures must be a list, got {signatures!r:.80}; e.g. [{{'protected': '...', 'signature': '...'}}].")
    for entry in signatures:
        if isinstance(entry, AgentCardSignature):
            card.signatures.append(entry)
            continue
        if not isinstance(entry, Mapping) or not entry.get("protected") or not entry.get("signature"):
            raise ValueError(
                f"each signature needs 'protected' and 'signature' (JWS, base64url), got {entry!r:.80}; "
                f"e.g. {{'protected': 'eyJhbGciOiJFUzI1NiJ9', 'signature': 'MEUCIQ...'}}."
            )
        signature = AgentCardSignature()
        try:
            ParseDict(dict(entry), signature)
        except ParseError as error:
            raise ValueError(f"signature {dict(entry)!r:.80} is not an A2A AgentCardSignature: {error}") from None
        card.signatures.append(signature)
