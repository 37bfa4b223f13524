"""The HTTP+JSON (REST) transport: the SDK's REST routes behind the same guard as JSON-RPC.

Served under one path (``/a2a/rest`` beside JSON-RPC at ``/a2a``): ``POST message:send``,
``POST message:stream``, ``GET tasks/{id}``, ``GET tasks``, ``POST tasks/{id}:cancel``,
``GET|POST tasks/{id}:subscribe``, the push config routes under
``tasks/{id}/pushNotificationConfigs`` and ``GET extendedAgentCard`` (and the 0.3 routes
under ``v1/``). Every request first passes :class:`RestGuard`:

========================================================  ======  ==============================
request                                                   HTTP    error (AIP-193 ``status``)
========================================================  ======  ==============================
no or wrong credentials (when ``auth`` is set)            401     ``UNAUTHENTICATED``
body over ``max_body_size`` bytes                         413     ``INVALID_ARGUMENT``
a body whose ``Content-Type`` is not JSON                 415     ``ContentTypeNotSupported``
========================================================  ======  ==============================

then reaches the same :class:`~pocketmesh.a2a.handler.PocketMeshRequestHandler` as JSON-RPC
and gRPC, with the caller's owner in its call context. Responses are ``application/json``.
"""

from __future__ import annotations

from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.routes import create_rest_routes
from a2a.utils.error_handlers import build_rest_error_payload
from a2a.utils.errors import ContentTypeNotSupportedError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import OWNER_SCOPE_KEY, Authenticator, OwnerContextBuilder

_METHODS_BY_SUFFIX = (
    ("/message:stream", "SendStreamingMessage"),
    ("/message:send", "SendMessage"),
    (":subscribe", "SubscribeToTask"),
)


class RestContextBuilder(OwnerContextBuilder):
    """The owner's call context, naming the A2A method the route stands for (as JSON-RPC's does),
    so a streamed send reports a working status per node on this transport too."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        path = request.url.path
        for suffix, method in _METHODS_BY_SUFFIX:
            if path.endswith(suffix):
                context.state["method"] = method
                break
        return context


def rest_routes(handler: Any, path: str, *, auth: Authenticator | None, max_body_size: int) -> list[BaseRoute]:
    """The REST routes of ``handler`` under ``path``, behind :class:`RestGuard`."""
    routes = create_rest_routes(handler, context_builder=RestContextBuilder(), enable_v0_3_compat=True)
    return [Mount(path, app=RestGuard(Router(routes=routes), auth=auth, max_body_size=max_body_size))]


def _problem(status: int, grpc_status: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": status, "status": grpc_status, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RestGuard:
    """ASGI middleware before the REST routes: authentication, body size, content type."""

    def __init__(self, app: ASGIApp, *, auth: Authenticator | None, max_body_size: int) -> None:
        self.app = app
        self.auth = auth
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if self.auth is not None:
            owner = await self.auth.authenticate(request)
            if owner is None:
                how = self.auth.challenge()
                response = _problem(
                    401,
                    "UNAUTHENTICATED",
                    f"authentication required: no valid credentials on this request; send them as the agent "
                    f"card's securitySchemes say ({how}).",
                    {"WWW-Authenticate": how},
                )
                await response(scope, receive, send)
                return
            scope[OWNER_SCOPE_KEY] = owner
        body = b""
        if scope["method"] in ("POST", "PUT", "PATCH"):
            read = await self._read(request)
            if not isinstance(read, bytes):
                await read(scope, receive, send)
                return
            body = read
            content_type = request.headers.get("content-type", "")
            if body and content_type and not _is_json(content_type):
                error = ContentTypeNotSupportedError(
                    message=f"content type {content_type!r:.60} is not supported; send the body as application/json."
                )
                await JSONResponse(build_rest_error_payload(error), status_code=415)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), _json_media_type(send))

    async def _read(self, request: Request) -> bytes | JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_size:
            return self._too_large(int(declared))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_size:
                return self._too_large(None)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int | None) -> JSONResponse:
        told = f"{size} bytes" if size is not None else f"more than {self.max_body_size} bytes"
        return _problem(
            413,
            "INVALID_ARGUMENT",
            f"request body too large: {told}, and this endpoint accepts at most {self.max_body_size}; send less "
            f"(large files by URL), or raise max_body_size in create_a2a_app.",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body over once, then waits for the disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _json_media_type(send: Send) -> Send:
    """A ``send`` that labels the SDK's ``application/a2a+json`` answers ``application/json``,
    the media type the HTTP+JSON binding specifies (and clients that check it expect)."""

    async def relabel(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (name, b"application/json") if name == b"content-type" and value.startswith(b"application/a2a+json")
                else (name, value)
                for name, value in message.get("headers", [])
            ]
            message = {**message, "headers": headers}
        await send(message)

    return relabel
