"""``create_a2a_app`` and ``a2a_server_handler``: PocketMesh flows served over A2A (JSON-RPC,
HTTP+JSON and gRPC)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from a2a.types import AgentCard
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from ..node import BaseNode
from .auth import ApiKeyAuth, AuthenticateFn, Authenticator, BearerAuth, OwnerContextBuilder, as_authenticator
from .card import card_routes, check_card, generate_agent_card, skills_for_flows
from .endpoint import DEFAULT_MAX_BODY_SIZE, JsonRpcEndpoint, create_dispatcher
from .executor import PocketMeshAgentExecutor
from .handler import PocketMeshRequestHandler
from .locks import DEFAULT_POSTGRES_TURNS, BoundedPersistence, TurnLocks, default_turn_limit
from .push import RetryPolicy
from .surface import DERIVED, ExtendedCard, Surface
from .messages import DEFAULT_MAX_HISTORY_SIZE, DEFAULT_MAX_MESSAGE_SIZE, MessageLimits
from .task_store import PocketMeshTaskStore

if TYPE_CHECKING:
    from ..persistence.base import Persistence

RPC_PATH = "/a2a"
DEFAULT_URL = "http://127.0.0.1:4000" + RPC_PATH
DEFAULT_CARD_CACHE_CONTROL = "public, max-age=300"
"""The card rarely changes; caches may keep it five minutes and revalidate with its ETag."""

Auth = BearerAuth | ApiKeyAuth | Authenticator | AuthenticateFn | None
"""What ``auth=`` accepts: a built-in scheme, any :class:`~pocketmesh.a2a.auth.Authenticator`,
a callable ``request -> owner | None``, or ``None`` (no authentication, one shared owner)."""


def create_a2a_app(
    flows: Mapping[str, BaseNode],
    agent_card: AgentCard | None = None,
    persistence: Persistence | None = None,
    *,
    rpc_path: str = RPC_PATH,
    auth: Auth = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    max_concurrent_turns: int | None = None,
    rest_path: str | None = DERIVED,
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
    push_allowed_hosts: Iterable[str] = (),
    allow_private_push_targets: bool = False,
    push_retry: RetryPolicy | None = None,
    extended_agent_card: ExtendedCard | None = None,
    expose_errors: bool = False,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    max_history_size: int | None = DEFAULT_MAX_HISTORY_SIZE,
    card_cache_control: str = DEFAULT_CARD_CACHE_CONTROL,
) -> Starlette:
    """An ASGI app: the agent card at ``/.well-known/agent-card.json``, JSON-RPC at ``/a2a``,
    HTTP+JSON under ``/a2a/rest`` and, with ``grpc_port``, gRPC on ``grpc_host:grpc_port``.

    Both wire versions answer on the one endpoint: A2A 1.0 methods (header ``A2A-Version: 1.0``)
    and the 0.3 names (``message/send``, ...). Without a card, one is generated with a skill
    per flow and the URL ``http://127.0.0.1:4000/a2a``; a card given without skills gets one
    skill per flow (see :func:`~pocketmesh.a2a.card.skills_for_flows`). Default persistence:
    SQLite.

    A failed task tells the client only that it failed, with an error id that the server log
    repeats beside the traceback; ``expose_errors=True`` sends the exception text as well, for
    development.

    ``auth`` (``BearerAuth(tokens={token: owner})``, ``ApiKeyAuth(keys={key: owner})`` or a
    callable ``request -> owner | None``) makes JSON-RPC require credentials (401 without) and
    scopes every task to its owner; the card stays public and declares the scheme. Bodies over
    ``max_body_size`` bytes (default 1 MiB) are refused with -32600; a message over
    ``max_message_size`` bytes (default 1 MiB), or one that would take its task's history over
    ``max_history_size`` bytes (default 8 MiB), with -32602 (``None``: no limit). See
    :mod:`pocketmesh.a2a.endpoint` and :mod:`pocketmesh.a2a.messages` for every refusal and its
    code. JSON-RPC also answers at ``/a2a/``; the card is sent with ``Cache-Control:
    card_cache_control`` (default ``public, max-age=300``) and an ``ETag``.

    Several servers may share one store (replicas behind one address): the turns of a task are
    serialized across them with the backend's per-run lock (PostgreSQL, Redis) or, for servers
    on one machine sharing a SQLite file, ``fcntl`` locks on ``<file>.locks``. At most
    ``max_concurrent_turns`` turns run at once in this server (default: 16 on PostgreSQL, whose
    connections are scarce, else no limit; ``0``: no limit).

    Transports: ``rest_path`` (default ``<rpc_path>/rest``; ``None``: no HTTP+JSON); gRPC is
    not ASGI, so ``grpc_port`` makes the app's lifespan start a ``grpc.aio`` server on
    ``grpc_host:grpc_port`` and stop it at shutdown (``pip install 'pocketmesh[grpc]'``). Each
    served transport is added to the card's ``supportedInterfaces`` (a binding the card already
    declares is kept), and all share the request handler: auth, owners, per-task turns and
    redelivery are the same on each.

    Push notifications (when the card declares ``pushNotifications``, as generated cards do):
    callbacks go only to public addresses, unless ``push_allowed_hosts`` (host names,
    addresses, networks) or ``allow_private_push_targets`` say otherwise; ``push_retry`` sets
    their retries (see :mod:`pocketmesh.a2a.push`). ``extended_agent_card`` (a card, or a
    function of the public card returning one) is served by ``GetExtendedAgentCard`` to callers
    that passed ``auth`` (to everyone without ``auth``) and sets ``capabilities.extendedAgentCard``.
    The app's ``state.a2a`` holds the handler, the served card and the gRPC server.
    """
    parts = _build(
        flows,
        agent_card,
        persistence,
        rpc_path,
        auth=auth,
        max_body_size=max_body_size,
        max_concurrent_turns=max_concurrent_turns,
        surface=Surface.from_options(
            rpc_path,
            rest_path=rest_path,
            grpc_port=grpc_port,
            grpc_host=grpc_host,
            push_allowed_hosts=push_allowed_hosts,
            allow_private_push_targets=allow_private_push_targets,
            push_retry=push_retry,
            extended_agent_card=extended_agent_card,
        ),
        expose_errors=expose_errors,
        limits=MessageLimits(max_message_size, max_history_size),
        card_cache_control=card_cache_control,
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await parts.surface.start()
        try:
            yield
        finally:
            await parts.close()

    app = Starlette(routes=parts.routes, lifespan=lifespan)
    app.state.a2a = parts
    return app


def a2a_server_handler(
    flows: Mapping[str, BaseNode],
    agent_card: AgentCard | None = None,
    persistence: Persistence | None = None,
    *,
    auth: Auth = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    max_concurrent_turns: int | None = None,
    expose_errors: bool = False,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    max_history_size: int | None = DEFAULT_MAX_HISTORY_SIZE,
    card_cache_control: str = DEFAULT_CARD_CACHE_CONTROL,
    **options: Any,
) -> Callable[[Starlette, str], Starlette]:
    """Mount the A2A routes on an existing Starlette app: ``a2a_server_handler(...)(app, "/a2a")``.

    ``auth``, ``max_body_size``, ``max_concurrent_turns``, ``expose_errors``, the limits, the
    card's ``Cache-Control`` and the transport, push and extended card ``options`` as in
    :func:`create_a2a_app` (HTTP+JSON under ``<path>/rest``).
    """
    limits = MessageLimits(max_message_size, max_history_size)

    def mount(app: Starlette, path: str = RPC_PATH) -> Starlette:
        parts = _build(
            flows,
            agent_card,
            persistence,
            path,
            auth=auth,
            max_body_size=max_body_size,
            max_concurrent_turns=max_concurrent_turns,
            surface=Surface.from_options(path, **options),
            expose_errors=expose_errors,
            limits=limits,
            card_cache_control=card_cache_control,
        )
        app.router.routes.extend(parts.routes)
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[Any]:
            await parts.surface.start()
            async with inner(a) as state:
                try:
                    yield state
                finally:
                    await parts.close()

        app.router.lifespan_context = lifespan
        return app

    return mount


@dataclass
class A2AParts:
    """What :func:`create_a2a_app` serves: routes, the request handler, the card, the other parts."""

    routes: list[BaseRoute]
    handler: PocketMeshRequestHandler
    card: AgentCard
    surface: Surface

    @property
    def grpc(self) -> Any:
        """The :class:`~pocketmesh.a2a.transports.GrpcServer`, or ``None`` without ``grpc_port``."""
        return self.surface.grpc

    async def close(self) -> None:
        """Stop the other transports, then the handler's running tasks."""
        try:
            await self.surface.close()
        finally:
            await self.handler.aclose()


def build_routes(
    flows: Mapping[str, BaseNode],
    agent_card: AgentCard | None,
    persistence: Persistence | None,
    rpc_path: str,
    *,
    auth: Auth = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    max_concurrent_turns: int | None = None,
    expose_errors: bool = False,
    limits: MessageLimits | None = None,
    card_cache_control: str = DEFAULT_CARD_CACHE_CONTROL,
) -> tuple[list[BaseRoute], Callable[[], Any]]:
    """The card, JSON-RPC and HTTP+JSON routes, and a coroutine function to call at shutdown."""
    parts = _build(
        flows, agent_card, persistence, rpc_path, auth=auth, max_body_size=max_body_size,
        max_concurrent_turns=max_concurrent_turns, surface=Surface.from_options(rpc_path),
        expose_errors=expose_errors, limits=limits, card_cache_control=card_cache_control,
    )
    return parts.routes, parts.close


def _build(
    flows: Mapping[str, BaseNode],
    agent_card: AgentCard | None,
    persistence: Persistence | None,
    rpc_path: str,
    *,
    auth: Auth = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    max_concurrent_turns: int | None = None,
    surface: Surface,
    expose_errors: bool = False,
    limits: MessageLimits | None = None,
    card_cache_control: str = DEFAULT_CARD_CACHE_CONTROL,
) -> A2AParts:
    if not isinstance(flows, Mapping) or not flows:
        raise ValueError(
            f"flows must be a non-empty dict of skill id -> Flow, got {flows!r:.80}; "
            f"e.g. create_a2a_app(flows={{'greet': Flow(GreetNode())}})."
        )
    for skill_id, flow in flows.items():
        if not isinstance(flow, BaseNode):
            raise TypeError(f"flows[{skill_id!r}] must be a Flow (or node), got {flow!r:.80} ({type(flow).__name__}).")
    authenticator = as_authenticator(auth)
    if persistence is None:
        from ..persistence import SQLitePersistence

        persistence = SQLitePersistence()
    card = AgentCard()
    card.CopyFrom(agent_card or generate_agent_card(name="pocketmesh-agent", url=DEFAULT_URL))
    if not card.skills:
        card.skills.extend(skills_for_flows(flows))
    check_card(card)
    if authenticator is not None:
        authenticator.declare(card)
    extended = surface.declare(card, authenticator)
    turns = TurnLocks(persistence, max_concurrent_turns=max_concurrent_turns)
    if default_turn_limit(persistence) is not None:
        # Connections are the scarce resource there: reads outside turns (task lookups,
        # tasks/get) are bounded too, not only the turns.
        persistence = BoundedPersistence(persistence, turns.max_concurrent_turns or DEFAULT_POSTGRES_TURNS)
    handler = PocketMeshRequestHandler(
        agent_executor=PocketMeshAgentExecutor(flows, persistence, turns=turns, expose_errors=expose_errors),
        task_store=PocketMeshTaskStore(persistence),
        agent_card=card,
        skills=flows,
        turns=turns,
        **surface.handler_options(persistence, card, extended),
        limits=limits,
    )
    endpoint = JsonRpcEndpoint(
        create_dispatcher(handler, OwnerContextBuilder()), max_body_size=max_body_size, auth=authenticator
    )
    rpc = endpoint.handle
    routes: list[BaseRoute] = [
        *card_routes(card, cache_control=card_cache_control),
        Route(rpc_path, endpoint=rpc, methods=["POST"]),
    ]
    if rpc_path != "/":
        # Clients that post to the card URL plus "/" get the endpoint, not a redirect.
        routes.append(Route(rpc_path.rstrip("/") + "/", endpoint=rpc, methods=["POST"]))
    routes.extend(surface.routes(handler, authenticator, max_body_size))
    return A2AParts(routes, handler, card, surface)
