"""Checks of one JSON-RPC request body, before the SDK sees it: decoding, envelope, method,
``A2A-Version``, and the shape of ``params``. Each refusal is a ready JSON-RPC error response
(see :mod:`pocketmesh.a2a.endpoint` for the table of codes)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from typing import Any

from a2a.compat.v0_3.jsonrpc_adapter import JSONRPC03Adapter
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from google.protobuf.descriptor import Descriptor
from packaging.version import InvalidVersion, Version
from starlette.responses import JSONResponse

MAX_DEPTH = 64
"""Deepest nesting of JSON arrays and objects accepted in a request."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
VERSION_NOT_SUPPORTED = -32009

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
    if model is not None and params:
        # The SDK's protobuf parser, told to ignore unknown fields, also takes a string or a
        # number for a nested message (as an empty one); the 1.0 schema wants objects and lists.
        problem = _shape_problem(model.DESCRIPTOR, params, "params")
        if problem is not None:
            return error_response(reply_id, INVALID_PARAMS, f"invalid params: {problem}")
    return None


_WELL_KNOWN_SHAPES: dict[str, type] = {
    "google.protobuf.Struct": dict,
    "google.protobuf.ListValue": list,
    "google.protobuf.Timestamp": str,
    "google.protobuf.Duration": str,
}


_Plan = dict[str, tuple[str, Any]]
_plans: dict[str, _Plan] = {}


def _plan(descriptor: Descriptor) -> _Plan:
    """JSON key -> (the shape it needs, the message descriptor to descend into), per message type."""
    plan = _plans.get(descriptor.full_name)
    if plan is not None:
        return plan
    plan = {}
    for field in descriptor.fields:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            shape: tuple[str, Any] = ("object", None)
        elif field.is_repeated:
            nested = message if message is not None and message.full_name not in _WELL_KNOWN_SHAPES else None
            shape = ("list", nested)
        elif message is None or message.full_name == "google.protobuf.Value":
            continue
        elif message.full_name in _WELL_KNOWN_SHAPES:
            shape = ({dict: "object", list: "list", str: "string"}[_WELL_KNOWN_SHAPES[message.full_name]], None)
        else:
            shape = ("object", message)
        plan[field.json_name] = plan[field.name] = shape
    _plans[descriptor.full_name] = plan
    return plan


_PYTHON_TYPE = {"object": dict, "list": list, "string": str}
_ARTICLE = {"object": "an object", "list": "a list", "string": "a string"}


def _shape_problem(descriptor: Descriptor, value: dict[str, Any], path: str) -> str | None:
    """Where ``value`` has a non-object for a message field or a non-list for a repeated one."""
    plan = _plan(descriptor)
    for key, item in value.items():
        shape = plan.get(key)
        if shape is None or item is None:
            continue
        kind, nested = shape
        where = f"{path}.{key}"
        if not isinstance(item, _PYTHON_TYPE[kind]):
            return f"{where} must be {_ARTICLE[kind]}, got {type(item).__name__} {item!r:.40}."
        if nested is None:
            continue
        if kind == "object":
            problem = _shape_problem(nested, item, where)
            if problem is not None:
                return problem
            continue
        for i, element in enumerate(item):
            if not isinstance(element, dict):
                return f"{where}[{i}] must be an object, got {type(element).__name__} {element!r:.40}."
            problem = _shape_problem(nested, element, f"{where}[{i}]")
            if problem is not None:
                return problem
    return None


@functools.lru_cache(maxsize=256)
def _version_problem(method: str, header: str) -> str | None:
    wanted = 0 if method in V03_METHODS else 1
    given = header.strip() or "0.3"
    try:
        major = Version(given).major
    except InvalidVersion:
        major = None
    if major == wanted:
        return None
    if wanted == 1:
        return (
            f"version not supported: {method} is an A2A 1.0 method and the request says A2A-Version "
            f"{given!r:.20}; send the header 'A2A-Version: 1.0', or use the method's 0.3 name without it."
        )
    return (
        f"version not supported: {method} is an A2A 0.3 name and the request says A2A-Version {given!r:.20}; "
        f"drop the header (0.3), or use the 1.0 method with 'A2A-Version: 1.0'."
    )
