"""``PocketMeshGrpcHandler``: the SDK's gRPC servicer, with the checks every transport makes.

Imported only when a gRPC server starts (it needs ``grpcio``). Each call is authenticated from
its metadata by the app's ``auth`` (the metadata stand in for HTTP headers, so one
authenticator serves every transport; refused with ``UNAUTHENTICATED``), its ``a2a-version``
checked (anything but 1.x is ``VersionNotSupportedError``), and its owner put in the call
context the request handler scopes tasks by. A2A errors map to the status codes of the A2A
specification (section 5.4), each with a ``google.rpc.ErrorInfo`` detail.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio
from a2a.auth.user import UnauthenticatedUser
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.grpc_handler import GrpcHandler
from a2a.utils.constants import VERSION_HEADER
from a2a.utils.errors import (
    A2A_ERROR_REASONS,
    A2AError,
    PushNotificationNotSupportedError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)
from a2a.utils.grpc_status import status_to_grpc
from google.protobuf import any_pb2
from google.protobuf import message as protobuf_message
from google.rpc import error_details_pb2, status_pb2
from packaging.version import InvalidVersion, Version
from starlette.requests import Request

from ..auth import Authenticator, OwnerUser

T = TypeVar("T")

# Request type -> the A2A method, per call shape (the executor tells streams by the method).
_UNARY_METHODS = {"SendMessageRequest": "SendMessage"}
_STREAM_METHODS = {"SendMessageRequest": "SendStreamingMessage", "SubscribeToTaskRequest": "SubscribeToTask"}

# Where the SDK's table differs from the specification's.
_SPEC_CODES: dict[type[A2AError], grpc.StatusCode] = {
    PushNotificationNotSupportedError: grpc.StatusCode.UNIMPLEMENTED,
    UnsupportedOperationError: grpc.StatusCode.UNIMPLEMENTED,
    VersionNotSupportedError: grpc.StatusCode.UNIMPLEMENTED,
}


class PocketMeshGrpcHandler(GrpcHandler):
    """The SDK's gRPC servicer, authenticating each call and checking its A2A version first."""

    def __init__(self, request_handler: Any, *, auth: Authenticator | None = None) -> None:
        super().__init__(request_handler)
        self.auth = auth

    async def _handle_unary(
        self,
        request: protobuf_message.Message,
        context: grpc.aio.ServicerContext,
        handler_func: Callable[[ServerCallContext], Awaitable[T]],
        default_response: T,
    ) -> T:
        try:
            call = await self._call_context(context, request, _UNARY_METHODS)
            return await handler_func(call)
        except A2AError as error:
            await self.abort_context(error, context)
        return default_response

    async def _handle_stream(
        self,
        request: protobuf_message.Message,
        context: grpc.aio.ServicerContext,
        handler_func: Callable[[ServerCallContext], AsyncIterable[T]],
    ) -> AsyncIterable[T]:
        try:
            call = await self._call_context(context, request, _STREAM_METHODS)
            async for item in handler_func(call):
                yield item
        except A2AError as error:
            await self.abort_context(error, context)

    async def _call_context(
        self, context: grpc.aio.ServicerContext, request: protobuf_message.Message, methods: dict[str, str]
    ) -> ServerCallContext:
        metadata = _metadata(context)
        owner = None
        if self.auth is not None:
            owner = await self.auth.authenticate(_request_from(metadata, context))
            if owner is None:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"authentication required: no valid credentials in the call metadata; send them as the agent "
                    f"card's securitySchemes say ({self.auth.challenge()}).",
                )
        _check_version(metadata)
        state: dict[str, Any] = {"grpc_context": context, "headers": dict(metadata)}
        method = methods.get(type(request).__name__)
        if method is not None:
            state["method"] = method
        call = ServerCallContext(
            user=OwnerUser(owner) if owner else UnauthenticatedUser(),
            state=state,
            requested_extensions=get_requested_extensions([v for k, v in metadata if k == HTTP_EXTENSION_HEADER.lower()]),
        )
        call.tenant = getattr(request, "tenant", "")
        return call

    async def abort_context(self, error: A2AError, context: grpc.aio.ServicerContext) -> None:
        """Abort with the specification's status for ``error`` (where the SDK's differs) and an ErrorInfo."""
        code = _SPEC_CODES.get(type(error))
        if code is None:
            await super().abort_context(error, context)
            return
        status = status_pb2.Status(code=code.value[0], message=getattr(error, "message", str(error)))
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.ErrorInfo(reason=A2A_ERROR_REASONS.get(type(error), "UNKNOWN_ERROR"), domain="a2a-protocol.org")
        )
        status.details.append(detail)
        rich = status_to_grpc(status)
        trailing = [(str(k), v) for k, v in context.trailing_metadata() or ()]
        context.set_trailing_metadata(tuple(trailing + [(str(k), v) for k, v in rich.trailing_metadata]))
        await context.abort(rich.code, rich.details)


def _metadata(context: Any) -> list[tuple[str, str]]:
    pairs = []
    for key, value in context.invocation_metadata() or ():
        if key.endswith("-bin"):
            continue  # binary values are no credentials or versions
        pairs.append((key.lower(), value if isinstance(value, str) else value.decode("utf-8", "replace")))
    return pairs


def _request_from(metadata: Sequence[tuple[str, str]], context: Any) -> Request:
    """The call as an HTTP request, so one authenticator serves every transport (headers = metadata)."""
    peer = str(context.peer() or "")
    host, _, port = peer.rpartition(":")
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/a2a.v1.A2AService",
        "query_string": b"",
        "headers": [(k.encode("latin-1", "replace"), v.encode("latin-1", "replace")) for k, v in metadata],
        "client": (host, int(port)) if port.isdigit() else None,
        "scheme": "grpc",
    }
    return Request(scope)


def _check_version(metadata: Sequence[tuple[str, str]]) -> None:
    given = next((v for k, v in metadata if k == VERSION_HEADER.lower()), "").strip()
    if not given:
        return  # gRPC speaks only 1.0: a call without the header means it
    try:
        major = Version(given).major
    except InvalidVersion:
        major = None
    if major != 1:
        raise VersionNotSupportedError(
            message=f"version not supported: the call says a2a-version {given!r:.20}, and this agent speaks A2A 1.0 "
            f"over gRPC; send the metadata 'a2a-version: 1.0'."
        )
