"""Checks of one JSON-RPC request body, before the SDK sees it: decoding, envelope, method,
``A2A-Version``, and the fields of ``params`` (:mod:`pocketmesh.a2a.fields`). Each refusal is
a ready JSON-RPC error response (see :mod:`pocketmesh.a2a.endpoint` for the table of codes)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from typing import Any

from a2a.compat.v0_3.jsonrpc_adapter import JSONRPC03Adapter
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from packaging.version import InvalidVersion, Version
from starlette.responses import JSONResponse

from .fields import params_problem, v03_params_problem

MAX_DEPTH = 64
"""Deepest nesting of JSON arrays and objects accepted in a request."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
VERSION_NOT_SUPPORTED = -32009
CONTENT_TYPE_NOT_SUPPORTED = -32005

V03_METHODS = frozenset(JSONRPC03Adapter.METHOD_TO_MODEL)
V1_METHODS = frozenset(JsonRpcDispatcher.METHOD_TO_MODEL)
_PARAMS_OPTIONAL = frozenset({"ListTasks", "GetExtendedAgentCard", "agent/getAuthenticatedExtendedCard"})

JsonId = str | int | None


def error_response(
    request_id: JsonId,
    code: int,
    message: str,
    *,
    data: Any = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON-RPC error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error}, status_code=status, headers=headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a finite number, or the value as a string")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range for a double; send it as a string")
    return value


def decode(raw: bytes) -> Any:
    """The request's JSON value, or the -32700 response saying why there is none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return error_response(
            None,
            PARSE_ERROR,
            f"parse error: the body is not UTF-8 (byte {raw[error.start:error.start + 1]!r} at offset "
            f"{error.start}); send the JSON-RPC request as UTF-8 JSON.",
        )
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        return error_response(
            None,
            PARSE_ERROR,
            f"parse error: {error.msg} at line {error.lineno} column {error.colno}; send one JSON-RPC "
            f"request object, e.g. {{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"message/send\", \"params\": {{...}}}}.",
        )
    except RecursionError:
        return _too_deep()
    except ValueError as error:  # NaN / Infinity, out-of-range floats, integers past the digit limit
        return error_response(None, PARSE_ERROR, f"parse error: {error}.")
    # Both walks are skipped for ordinary requests: they need many brackets or a \u escape.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(body) > MAX_DEPTH:
        return _too_deep()
    if "\\u" in text:
        where = _lone_surrogate(body)
        if where is not None:
            return error_response(
                None,
                PARSE_ERROR,
                f"parse error: a string {where} holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                f"escape), which is not Unicode text; escape characters outside the BMP as a surrogate pair.",
            )
    return body


def _too_deep() -> JSONResponse:
    return error_response(
        None,
        PARSE_ERROR,
        f"parse error: the JSON nests arrays and objects more than {MAX_DEPTH} levels deep; flatten the data.",
    )


def _children(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        return value.values()
    if isinstance(value, list):
        return value
    return ()


def _depth(body: Any) -> int:
    deepest = 0
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in _children(value))
    return deepest


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _lone_surrogate(body: Any) -> str | None:
    """Where a lone surrogate sits ("in key 'x'" / "at value 'x...'"), or ``None``."""
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                return f"value {value.encode('utf-8', 'backslashreplace').decode('ascii', 'replace')[:40]!r}"
        elif isinstance(value, dict):
            for key, child in value.items():
                if _has_surrogate(key):
                    return f"key {key.encode('utf-8', 'backslashreplace').decode('ascii', 'replace')[:40]!r}"
                stack.append(child)
        elif isinstance(value, list):
            stack.extend(value)
    return None


def check(body: Any, version_header: str) -> JSONResponse | None:
    """The JSON-RPC error for a request the SDK should not see, or ``None`` to pass it on."""
    if isinstance(body, list):
        return error_response(
            None,
            INVALID_REQUEST,
            f"invalid request: batch requests ({len(body)} items) are not supported; send one JSON-RPC "
            f"request object per HTTP request.",
        )
    if not isinstance(body, dict):
        return error_response(
            None,
            INVALID_REQUEST,
            f"invalid request: a JSON-RPC request is an object, got {type(body).__name__} {body!r:.40}; "
            f"send {{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ..., \"params\": {{...}}}}.",
        )
    request_id = body.get("id")
    id_ok = request_id is None or (isinstance(request_id, (str, int)) and not isinstance(request_id, bool))
    reply_id = request_id if id_ok else None
    if body.get("jsonrpc") != "2.0":
        return error_response(
            reply_id,
            INVALID_REQUEST,
            f"invalid request: 'jsonrpc' must be \"2.0\", got {body.get('jsonrpc')!r:.40}.",
        )
    if not id_ok:
        return error_response(
            None,
            INVALID_REQUEST,
            f"invalid request: 'id' must be a string, an integer or null, got {type(request_id).__name__} "
            f"{request_id!r:.40}.",
        )
    method = body.get("method")
    if not isinstance(method, str) or not method:
        return error_response(
            reply_id,
            INVALID_REQUEST,
            f"invalid request: 'method' must be a non-empty string, got {method!r:.40}; e.g. \"message/send\" "
            f"or \"SendMessage\".",
        )
    if method not in V1_METHODS and method not in V03_METHODS:
        return error_response(
            reply_id,
            METHOD_NOT_FOUND,
            f"method not found: {method!r:.60}; this agent answers the A2A 1.0 methods (SendMessage, GetTask, "
            f"CancelTask, ...) and their 0.3 names (message/send, tasks/get, tasks/cancel, ...).",
        )
    if len(version_header) > _LONGEST_VERSION:
        return error_response(
            reply_id,
            VERSION_NOT_SUPPORTED,
            f"version not supported: the A2A-Version header holds {len(version_header)} characters "
            f"({version_header[:20]!r}...), which is no version; send 'A2A-Version: 1.0' for the 1.0 "
            f"methods, or no header for the 0.3 names.",
        )
    problem = _version_problem(method, version_header)
    if problem is not None:
        return error_response(reply_id, VERSION_NOT_SUPPORTED, problem)
    params = body.get("params")
    if (params is None and method not in _PARAMS_OPTIONAL) or (params is not None and not isinstance(params, dict)):
        return error_response(
            reply_id,
            INVALID_PARAMS,
            f"invalid params: {method} needs a 'params' object, got {params!r:.60}; e.g. "
            f"{{\"message\": {{...}}}} or {{\"id\": \"<task id>\"}}.",
        )
    model = JsonRpcDispatcher.METHOD_TO_MODEL.get(method)
    if params:
        problem = params_problem(model.DESCRIPTOR, params) if model is not None else v03_params_problem(params)
        if problem is not None:
            return error_response(reply_id, INVALID_PARAMS, f"invalid params: {problem}")
    return None


_LONGEST_VERSION = 32
"""A longer ``A2A-Version`` is no version this server speaks (and not worth parsing)."""


@functools.lru_cache(maxsize=256)
def _version_problem(method: str, header: str) -> str | None:
    wanted = 0 if method in V03_METHODS else 1
    given = header.strip() or "0.3"
    try:
        major = Version(given).major
    except (InvalidVersion, ValueError):  # ValueError: a number past int()'s digit limit
        major = None
    if major == wanted:
        return None
    said = f"says A2A-Version {given!r:.20}" if header.strip() else "sent no A2A-Version header, so it is read as 0.3"
    if wanted == 1:
        return (
            f"version not supported: {method} is an A2A 1.0 method and the request {said}; "
            f"send the header 'A2A-Version: 1.0', or use the method's 0.3 name without it."
        )
    return (
        f"version not supported: {method} is an A2A 0.3 name and the request {said}; "
        f"drop the header (0.3), or use the 1.0 method with 'A2A-Version: 1.0'."
    )


def content_type_refusal(content_type: str) -> JSONResponse | None:
    """The -32005 answer to a body declared as anything but JSON (none for JSON or no type)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        return error_response(
            None,
            CONTENT_TYPE_NOT_SUPPORTED,
            f"content type not supported: {content_type!r:.60}; send the JSON-RPC request as application/json.",
        )
    return None
