"""``create_a2a_app`` and ``a2a_server_handler``: PocketMesh flows served over A2A JSON-RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from a2a.server.routes import create_agent_card_routes
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.types import AgentCard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..node import BaseNode
from .card import generate_agent_card, skills_for_flows
from .executor import PocketMeshAgentExecutor
from .handler import PocketMeshRequestHandler
from .task_store import PocketMeshTaskStore

if TYPE_CHECKING:
    from ..persistence.base import Persistence

RPC_PATH = "/a2a"
DEFAULT_URL = "http://127.0.0.1:4000" + RPC_PATH


def create_a2a_app(
    flows: Mapping[str, BaseNode],
    agent_card: AgentCard | None = None,
    persistence: Persistence | None = None,
    *,
    rpc_path: str = RPC_PATH,
) -> Starlette:
    """An ASGI app: the agent card at ``/.well-known/agent-card.json``, JSON-RPC at ``/a2a``.

    Both wire versions answer on the one endpoint: A2A 1.0 methods (header ``A2A-Version: 1.0``)
    and the 0.3 names (``message/send``, ...). Without a card, one is generated with a skill
    per flow and the URL ``http://127.0.0.1:4000/a2a``. Default persistence: SQLite.
    """
    routes, close = build_routes(flows, agent_card, persistence, rpc_path)

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
) -> Callable[[Starlette, str], Starlette]:
    """Mount the A2A routes on an existing Starlette app: ``a2a_server_handler(...)(app, "/a2a")``."""

    def mount(app: Starlette, path: str = RPC_PATH) -> Starlette:
        routes, close = build_routes(flows, agent_card, persistence, path)
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
    if persistence is None:
        from ..persistence import SQLitePersistence

        persistence = SQLitePersistence()
    card = agent_card or generate_agent_card(name="pocketmesh-agent", url=DEFAULT_URL, skills=skills_for_flows(flows))
    handler = PocketMeshRequestHandler(
        agent_executor=PocketMeshAgentExecutor(flows, persistence),
        task_store=PocketMeshTaskStore(persistence),
        agent_card=card,
        skills=flows,
    )
    dispatcher = JsonRpcDispatcher(request_handler=handler, enable_v0_3_compat=True)
    routes: list[BaseRoute] = [
        *create_agent_card_routes(card),
        Route(rpc_path, endpoint=_with_params_check(dispatcher), methods=["POST"]),
    ]
    return routes, handler.aclose


def _with_params_check(dispatcher: JsonRpcDispatcher) -> Callable[[Request], Any]:
    """The dispatcher's endpoint, answering a known method without an object ``params`` with -32602.

    The SDK reports that case as -32600 on the 0.3 names; JSON-RPC and A2A call it invalid params.
    """
    known = set(dispatcher.METHOD_TO_MODEL) | {
        "message/send", "message/stream", "tasks/get", "tasks/cancel", "tasks/resubscribe",
    }

    async def endpoint(request: Request) -> Response:
        try:
            body = await request.json()  # cached on the request; the dispatcher reuses it
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("method") in known and not isinstance(body.get("params"), dict):
            request_id = body.get("id") if isinstance(body.get("id"), (str, int)) else None
            return JSONResponse(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "error": {
                        "code": -32602,
                        "message": (
                            f"invalid params: {body['method']} needs a 'params' object, got "
                            f"{body.get('params')!r:.60}; e.g. {{\"message\": {{...}}}} or {{\"id\": \"<task id>\"}}."
                        ),
                    },
                }
            )
        return await dispatcher.handle_requests(request)

    return endpoint
