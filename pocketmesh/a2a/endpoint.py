"""The guarded JSON-RPC endpoint: authentication, size limit and request checks before the SDK.

Every request the SDK's dispatcher sees has passed these checks, so nothing malformed can
create a task or a run, and nothing a client sends can turn into an HTTP 5xx:

==========================================================  ===========  ======
request                                                     JSON-RPC     HTTP
==========================================================  ===========  ======
no or wrong credentials (when ``auth`` is set)              -32600       401
a ``Content-Type`` other than JSON                          -32005       200
body over ``max_body_size`` bytes                           -32600       200
not UTF-8, not JSON, NaN/Infinity, lone surrogates,         -32700       200
nesting deeper than 64 levels
not an object (including batches), bad ``jsonrpc`` / ``id``  -32600       200
/ ``method``
unknown method                                              -32601       200
``A2A-Version`` missing for a 1.0 method, 1.x on a 0.3      -32009       200
name, or a version this server does not speak
``params`` missing (where required), not an object, of the  -32602       200
wrong shape, or with a bad field (:mod:`.fields`); a message
:mod:`.messages` refuses (checked in the request handler)
unknown task, or another owner's task                       -32001       200
==========================================================  ===========  ======

HTTP 200 with a JSON-RPC error is the SDK's style for everything about the request itself
(it answers an oversized body that way too); 401 is the one transport-level answer, because a
caller without credentials never gets as far as JSON-RPC, and HTTP clients and proxies
recognise it (it carries ``WWW-Authenticate``).
"""

from __future__ import annotations

from typing import Any

from a2a.compat.v0_3.jsonrpc_adapter import JSONRPC03Adapter
from a2a.server.jsonrpc_models import InvalidParamsError as CoreInvalidParamsError
from a2a.server.jsonrpc_models import InvalidRequestError as CoreInvalidRequestError
from a2a.server.jsonrpc_models import JSONRPCError as CoreJSONRPCError
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.utils.constants import VERSION_HEADER
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .auth import OWNER_SCOPE_KEY, Authenticator
from .validation import INVALID_REQUEST, JsonId, check, content_type_refusal, decode, error_response

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""Largest request body accepted by default, in bytes (1 MiB)."""


class _V03Adapter(JSONRPC03Adapter):
    """The SDK's 0.3 adapter, answering params of the wrong shape with -32602, not -32600.

    The endpoint has already checked the envelope (``jsonrpc``, ``id``, ``method``), so a
    validation failure the adapter reports as an invalid request can only be about ``params``.
    """

    def _generate_error_response(self, request_id: JsonId, error: Exception | CoreJSONRPCError) -> JSONResponse:
        if isinstance(error, CoreInvalidRequestError):
            error = CoreInvalidParamsError(message=f"invalid params: {_first_problem(error.data)}", data=error.data)
        return super()._generate_error_response(request_id, error)


def _first_problem(details: Any) -> str:
    """``params.message.role: Field required`` from a pydantic error text (the first problem only)."""
    lines = [line.strip() for line in str(details or "").splitlines()]
    if len(lines) >= 3:
        return f"{lines[1]}: {lines[2].split(' [type=')[0]} (the A2A 0.3 schema of this method; all problems in data)"
    return "they do not match the A2A 0.3 schema of this method (see data)"


def create_dispatcher(handler: Any, context_builder: Any) -> JsonRpcDispatcher:
    """The SDK's JSON-RPC dispatcher (1.0 and 0.3 names), with the 0.3 adapter's params errors fixed."""
    dispatcher = JsonRpcDispatcher(request_handler=handler, context_builder=context_builder, enable_v0_3_compat=True)
    dispatcher._v03_adapter = _V03Adapter(http_handler=handler, context_builder=context_builder)  # noqa: SLF001
    return dispatcher


class JsonRpcEndpoint:
    """The Starlette endpoint for ``POST /a2a``: checks the request, then hands it to the SDK."""

    def __init__(
        self, dispatcher: JsonRpcDispatcher, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE, auth: Authenticator | None = None
    ) -> None:
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 1:
            raise ValueError(
                f"max_body_size must be a positive number of bytes, got {max_body_size!r:.40}; "
                f"e.g. max_body_size=4 * 1024 * 1024 for 4 MiB."
            )
        self.dispatcher = dispatcher
        self.max_body_size = max_body_size
        self.auth = auth

    async def handle(self, request: Request) -> Response:
        """Answer one POST: refuse it with a JSON-RPC error, or pass it to the SDK."""
        if self.auth is not None:
            owner = await self.auth.authenticate(request)
            if owner is None:
                return self._unauthenticated()
            request.scope[OWNER_SCOPE_KEY] = owner
        refusal = content_type_refusal(request.headers.get("content-type", ""))
        if refusal is not None:
            return refusal
        raw = await self._read(request)
        if isinstance(raw, Response):
            return raw
        body = decode(raw)
        if isinstance(body, Response):
            return body
        refusal = check(body, request.headers.get(VERSION_HEADER, ""))
        if refusal is not None:
            return refusal
        # The dispatcher reads the body through Request.json(); hand it what was checked.
        request._body = raw  # noqa: SLF001
        request._json = body  # noqa: SLF001
        return await self.dispatcher.handle_requests(request)

    async def _read(self, request: Request) -> bytes | Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit():
            if int(declared) > self.max_body_size:
                return self._too_large(int(declared))
            # The server holds the body to its declared length, so it is safe to read at once.
            try:
                return await request.body()
            except ClientDisconnect:
                return Response(status_code=400)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body_size:
                    return self._too_large(size, at_least=True)
                chunks.append(chunk)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        return b"".join(chunks)

    def _too_large(self, size: int, *, at_least: bool = False) -> Response:
        return error_response(
            None,
            INVALID_REQUEST,
            f"request body too large: {'more than ' if at_least else ''}{size} bytes, and this endpoint accepts "
            f"at most {self.max_body_size}; send less (large files by URL), or raise max_body_size "
            f"in create_a2a_app.",
            data={"maxBodySize": self.max_body_size},
        )

    def _unauthenticated(self) -> Response:
        assert self.auth is not None
        how = self.auth.challenge()
        return error_response(
            None,
            INVALID_REQUEST,
            f"authentication required: no valid credentials on this request; send them as the agent card's "
            f"securitySchemes say ({how}).",
            status=401,
            headers={"WWW-Authenticate": how},
        )
