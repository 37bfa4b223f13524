"""``create_a2a_app`` and ``a2a_server_handler``: PocketMesh flows served over A2A JSON-RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from a2a.server.routes import create_agent_card_routes
from a2a.types import AgentCard
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from ..node import BaseNode
from .auth import ApiKeyAuth, AuthenticateFn, Authenticator, BearerAuth, OwnerContextBuilder, as_authenticator
from .card import generate_agent_card, skills_for_flows
from .endpoint import DEFAULT_MAX_BODY_SIZE, JsonRpcEndpoint, create_dispatcher
from .executor import PocketMeshAgentExecutor
from .handler import PocketMeshRequestHandler
from .locks import DEFAULT_POSTGRES_TURNS, BoundedPersistence, TurnLocks, default_turn_limit
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
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    max_history_size: int | None = DEFAULT_MAX_HISTORY_SIZE,
    card_cache_control: str = DEFAULT_CARD_CACHE_CONTROL,
) -> Starlette:
    """An ASGI app: the agent card at ``/.well-known/agent-card.json``, JSON-RPC at ``/a2a``.

    Both wire versions answer on the one endpoint: A2A 1.0 methods (header ``A2A-Version: 1.0``)
    and the 0.3 names (``message/send``, ...). Without a card, one is generated with a skill
    per flow and the URL ``http://127.0.0.1:4000/a2a``. Default persistence: SQLite.

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
    """
    routes, close = build_routes(
        flows,
        agent_card,
        persistence,
        rpc_path,
        auth=auth,
        max_body_size=max_body_size,
        max_concurrent_turns=max_concurrent_turns,
        limits=MessageLimits(max_message_size, max_history_size),
        card_cache_control=card_cache_control,
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await close()

    return Starlette(routes=routes, lifespan=lifespan)


def a2a_server_handler(
    flows: Mapping[str, BaseNode],
    agent_card: AgentCard | None = None,
    persistence: Persistence | None = None,
    *,
    auth: Auth = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    max_concurrent_turns: int | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    max_history_size: int | None = DEFAULT_MAX_HISTORY_SIZE,
    card_cache_control: str = DEFAULT_CARD_CACHE_CONTROL,
) -> Callable[[Starlette, str], Starlette]:
    """Mount the A2A routes on an existing Starlette app: ``a2a_server_handler(...)(app, "/a2a")``.

    The options as in :func:`create_a2a_app`.
    """
    limits = MessageLimits(max_message_size, max_history_size)

    def mount(app: Starlette, path: str = RPC_PATH) -> Starlette:
        routes, close = build_routes(
            flows,
            agent_card,
            persistence,
            path,
            auth=auth,
            max_body_size=max_body_size,
            max_concurrent_turns=max_concurrent_turns,
            limits=limits,
            card_cache_control=card_cache_control,
        )
        app.router.routes.extend(routes)
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[Any]:
            async with inner(a) as state:
                try:
                    yield state
                finally:
                    await close()

        app.router.lifespan_context = lifespan
        return app

    return mount


def build_routes(
    flows: Mapping[str, BaseNode],
    agent_card: AgentCard | None,
    persistence: Persistence | None,
    rpc_path: str,
    *,
    auth: Auth = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    max_concurrent_turns: int | None = None,
    limits: MessageLimits | None = None,
    card_cache_control: str = DEFAULT_CARD_CACHE_CONTROL,
) -> tuple[list[BaseRoute], Callable[[], Any]]:
    """The card and JSON-RPC routes, and a coroutine function to call at shutdown."""
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
    card.CopyFrom(agent_card or generate_agent_card(name="pocketmesh-agent", url=DEFAULT_URL, skills=skills_for_flows(flows)))
    if authenticator is not None:
        authenticator.declare(card)
    turns = TurnLocks(persistence, max_concurrent_turns=max_concurrent_turns)
    if default_turn_limit(persistence) is not None:
        # Connections are the scarce resource there: reads outside turns (task lookups,
        # tasks/get) are bounded too, not only the turns.
        persistence = BoundedPersistence(persistence, turns.max_concurrent_turns or DEFAULT_POSTGRES_TURNS)
    handler = PocketMeshRequestHandler(
        agent_executor=PocketMeshAgentExecutor(flows, persistence, turns=turns),
        task_store=PocketMeshTaskStore(persistence),
        agent_card=card,
        skills=flows,
        turns=turns,
        limits=limits,
    )
    endpoint = JsonRpcEndpoint(
        create_dispatcher(handler, OwnerContextBuilder()), max_body_size=max_body_size, auth=authenticator
    )
    routes: list[BaseRoute] = [
        *create_agent_card_routes(card, cache_control=card_cache_control),
        Route(rpc_path, endpoint=endpoint.handle, methods=["POST"]),
    ]
    if not rpc_path.endswith("/"):
        # Some clients post to the card's URL plus a slash; Starlette would answer a redirect
        # with an empty body, which a JSON-RPC client cannot follow with its POST.
        routes.append(Route(rpc_path + "/", endpoint=endpoint.handle, methods=["POST"]))
    return routes, handler.aclose
