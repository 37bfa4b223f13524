"""``interfaces_for``: the transports an app serves, declared in its card's ``supportedInterfaces``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from a2a.types import AgentCard, AgentInterface

JSONRPC = "JSONRPC"
HTTP_JSON = "HTTP+JSON"
GRPC = "GRPC"


def interfaces_for(card: AgentCard, *, rest_path: str | None, grpc_port: int | None) -> None:
    """Add the HTTP+JSON and gRPC interfaces the app serves to ``card``, after the JSON-RPC one.

    Their URLs follow the card's own (JSON-RPC) URL, which says where clients reach this agent:
    ``http://host:4000/a2a`` gives ``http://host:4000/a2a/rest`` for HTTP+JSON and ``host:<grpc
    port>`` for gRPC. A binding the card already declares is left as it is (a proxy's public
    address, say). Clients pick the first interface they speak, so JSON-RPC stays first.
    """
    declared = {i.protocol_binding for i in card.supported_interfaces}
    base = next((i for i in card.supported_interfaces if i.protocol_binding == JSONRPC), None)
    if base is None and card.supported_interfaces:
        base = card.supported_interfaces[0]
    if base is None:
        return
    parts = urlsplit(base.url)
    version = base.protocol_version or "1.0"
    if rest_path is not None and HTTP_JSON not in declared:
        url = urlunsplit((parts.scheme, parts.netloc, rest_path, "", ""))
        card.supported_interfaces.append(AgentInterface(url=url, protocol_binding=HTTP_JSON, protocol_version=version))
    if grpc_port is not None and GRPC not in declared and parts.hostname:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        card.supported_interfaces.append(
            AgentInterface(url=f"{host}:{grpc_port}", protocol_binding=GRPC, protocol_version=version)
        )
