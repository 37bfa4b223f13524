"""``Surface``: what an app serves beside JSON-RPC — HTTP+JSON, gRPC, push notifications and the
extended card — and the card entries that declare them. Built by :func:`~pocketmesh.a2a.create_a2a_app`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from a2a.types import AgentCard
from starlette.routing import BaseRoute

from .auth import Authenticator
from .push import PushConfigStore, PushPolicy, PushSender, RetryPolicy
from .transports import GrpcServer, interfaces_for, require_grpc, rest_routes

if TYPE_CHECKING:
    from ..persistence.base import Persistence


DERIVED: Any = object()
"""The default of ``rest_path``: derived from the JSON-RPC path (``/a2a`` -> ``/a2a/rest``)."""

ExtendedCard = AgentCard | Callable[[AgentCard], AgentCard]
"""An extended card, or a function of the public card (transports and auth declared) returning one."""


def default_rest_path(rpc_path: str) -> str:
    """Where HTTP+JSON is served beside JSON-RPC at ``rpc_path``: ``/a2a`` -> ``/a2a/rest``."""
    return rpc_path.rstrip("/") + "/rest"


@dataclass
class Surface:
    """The optional parts of one A2A app, from the ``create_a2a_app`` arguments."""

    rest_path: str | None
    grpc_port: int | None = None
    grpc_host: str = "127.0.0.1"
    push_policy: PushPolicy = field(default_factory=PushPolicy)
    push_retry: RetryPolicy | None = None
    extended_agent_card: ExtendedCard | None = None
    grpc: GrpcServer | None = None
    push_sender: PushSender | None = None

    @classmethod
    def from_options(
        cls,
        rpc_path: str,
        *,
        rest_path: str | None = DERIVED,
        grpc_port: int | None = None,
        grpc_host: str = "127.0.0.1",
        push_allowed_hosts: Iterable[str] = (),
        allow_private_push_targets: bool = False,
        push_retry: RetryPolicy | None = None,
        extended_agent_card: ExtendedCard | None = None,
    ) -> Surface:
        """Check the options (each bad one raises naming it) and gather them."""
        if rest_path is DERIVED:
            rest_path = default_rest_path(rpc_path)
        if rest_path is not None and (not isinstance(rest_path, str) or not rest_path.startswith("/") or rest_path == "/"):
            raise ValueError(f"rest_path must be a path such as '/a2a/rest' (or None for no HTTP+JSON), got {rest_path!r:.60}.")
        if rest_path is not None and rest_path.rstrip("/") == rpc_path.rstrip("/"):
            raise ValueError(f"rest_path {rest_path!r} is the JSON-RPC path too; give HTTP+JSON its own, e.g. '{rpc_path}/rest'.")
        if grpc_port is not None:
            require_grpc()
        if extended_agent_card is not None and not (
            isinstance(extended_agent_card, AgentCard) or callable(extended_agent_card)
        ):
            raise TypeError(
                f"extended_agent_card must be an AgentCard (e.g. from generate_agent_card(...)) or a function of "
                f"the public card returning one, got {extended_agent_card!r:.80} ({type(extended_agent_card).__name__})."
            )
        policy = PushPolicy(allowed_hosts=push_allowed_hosts, allow_private=allow_private_push_targets)
        return cls(
            rest_path=rest_path.rstrip("/") if rest_path else None,
            grpc_port=grpc_port,
            grpc_host=grpc_host,
            push_policy=policy,
            push_retry=push_retry,
            extended_agent_card=extended_agent_card,
        )

    def declare(self, card: AgentCard, authenticator: Authenticator | None) -> AgentCard | None:
        """Add the served transports to ``card`` (and the extended card); returns the extended card."""
        interfaces_for(card, rest_path=self.rest_path, grpc_port=self.grpc_port)
        if self.extended_agent_card is None:
            return None
        card.capabilities.extended_agent_card = True
        given = self.extended_agent_card
        if not isinstance(given, AgentCard):
            public = AgentCard()
            public.CopyFrom(card)
            name = getattr(given, "__qualname__", repr(given))
            try:
                given = given(public)
            except TypeError as error:
                raise TypeError(
                    f"extended_agent_card {name} could not be called with the public card ({error}); it must take "
                    f"the public AgentCard and return the extended one."
                ) from error
            if not isinstance(given, AgentCard):
                raise TypeError(f"extended_agent_card {name} must return an AgentCard, got {type(given).__name__}.")
        extended = AgentCard()
        extended.CopyFrom(given)
        extended.capabilities.extended_agent_card = True
        if not extended.supported_interfaces:
            extended.supported_interfaces.extend(card.supported_interfaces)
        else:
            interfaces_for(extended, rest_path=self.rest_path, grpc_port=self.grpc_port)
        if authenticator is not None:
            authenticator.declare(extended)
        _also_as_0_3(extended)
        return extended

    def handler_options(self, persistence: Persistence, card: AgentCard, extended: AgentCard | None) -> dict[str, Any]:
        """The request handler's push store and sender (when the card declares push) and extended card."""
        options: dict[str, Any] = {"extended_agent_card": extended}
        if card.capabilities.push_notifications:
            store = PushConfigStore(persistence, self.push_policy)
            self.push_sender = PushSender(store, self.push_policy, retry=self.push_retry)
            options.update(push_config_store=store, push_sender=self.push_sender)
        return options

    def routes(self, handler: Any, authenticator: Authenticator | None, max_body_size: int) -> list[BaseRoute]:
        """The HTTP+JSON routes (none when ``rest_path`` is ``None``); builds the gRPC server too."""
        if self.grpc_port is not None:
            self.grpc = GrpcServer(
                handler, host=self.grpc_host, port=self.grpc_port, auth=authenticator, max_message_size=max_body_size
            )
        if self.rest_path is None:
            return []
        return rest_routes(handler, self.rest_path, auth=authenticator, max_body_size=max_body_size)

    async def start(self) -> None:
        """Start the gRPC server, if there is one."""
        if self.grpc is not None:
            await self.grpc.start()

    async def close(self) -> None:
        """Stop the gRPC server, then give queued push notifications a moment to go out."""
        if self.grpc is not None:
            await self.grpc.stop()
        if self.push_sender is not None:
            await self.push_sender.aclose()


def _also_as_0_3(card: AgentCard) -> None:
    """List the JSON-RPC endpoint under protocol 0.3 too (last): it answers the 0.3 names, and a
    0.3 ``agent/getAuthenticatedExtendedCard`` can only render a card that has a 0.3 interface."""
    jsonrpc = next((i for i in card.supported_interfaces if i.protocol_binding == "JSONRPC"), None)
    if jsonrpc is None or any(i.protocol_version.startswith("0.") for i in card.supported_interfaces):
        return
    legacy = card.supported_interfaces.add()
    legacy.CopyFrom(jsonrpc)
    legacy.protocol_version = "0.3"
