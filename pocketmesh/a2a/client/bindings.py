"""Which transport a client uses: one the agent's card offers and this client can speak.

Names accepted for ``transport=``: ``"JSONRPC"`` (``"jsonrpc"``, ``"json-rpc"``),
``"HTTP+JSON"`` (``"rest"``, ``"http_json"``, ``"http+json"``) and ``"GRPC"`` (``"grpc"``, which
needs ``grpcio``). Without one, the first interface of the card this client speaks is used:
the agent lists them in the order it prefers.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from a2a.client import ClientConfig
from a2a.types import AgentCard

JSONRPC = "JSONRPC"
HTTP_JSON = "HTTP+JSON"
GRPC = "GRPC"

_ALIASES = {
    "jsonrpc": JSONRPC,
    "json-rpc": JSONRPC,
    "json_rpc": JSONRPC,
    "http+json": HTTP_JSON,
    "http_json": HTTP_JSON,
    "http-json": HTTP_JSON,
    "rest": HTTP_JSON,
    "grpc": GRPC,
}


def binding_name(transport: str) -> str:
    """The card's ``protocolBinding`` for a transport name (``"rest"`` -> ``"HTTP+JSON"``)."""
    name = _ALIASES.get(transport.strip().lower()) if isinstance(transport, str) else None
    if name is None:
        raise ValueError(
            f"unknown transport {transport!r:.40}; use 'JSONRPC', 'HTTP+JSON' (or 'rest') or 'GRPC', "
            f"or leave transport out to use the agent's preferred one."
        )
    return name


def speakable() -> list[str]:
    """The bindings this client can speak here (gRPC only with ``grpcio`` installed)."""
    found = [JSONRPC, HTTP_JSON]
    if importlib.util.find_spec("grpc") is not None:
        found.append(GRPC)
    return found


def choose(card: AgentCard, transport: str | None) -> str:
    """The binding to use with the agent of ``card``: ``transport`` if given, else the card's first we speak."""
    offered = [i.protocol_binding for i in card.supported_interfaces]
    can = speakable()
    if transport is not None:
        wanted = binding_name(transport)
        if wanted not in offered:
            raise ValueError(
                f"the agent {card.name!r} offers {', '.join(offered) or 'no interface'}, not {wanted}; "
                f"choose one of those, or leave transport out."
            )
        if wanted not in can:
            raise ImportError("the GRPC transport needs grpcio: pip install 'pocketmesh[grpc]'.")
        return wanted
    for binding in offered:
        if binding in can:
            return binding
    raise ValueError(
        f"the agent {card.name!r} offers {', '.join(offered) or 'no interface'}, and this client speaks "
        f"{', '.join(can)}; install grpcio (pip install 'pocketmesh[grpc]') if the agent offers only GRPC."
    )


def client_config(binding: str, **options: Any) -> ClientConfig:
    """An SDK client config that uses ``binding`` (a gRPC channel per client for ``GRPC``)."""
    config = ClientConfig(supported_protocol_bindings=[binding], **options)
    if binding == GRPC:
        config.grpc_channel_factory = _channel
    return config


def _channel(target: str) -> Any:
    import grpc
    import grpc.aio

    for scheme in ("grpcs://", "https://"):
        if target.startswith(scheme):
            return grpc.aio.secure_channel(target.removeprefix(scheme), grpc.ssl_channel_credentials())
    return grpc.aio.insecure_channel(target.removeprefix("grpc://").removeprefix("http://"))
