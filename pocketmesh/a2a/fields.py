"""Field checks of JSON request params, before the SDK parses them into its protobuf types.

The SDK's JSON parser, told to ignore unknown fields, turns an unknown enum name into the
enum's zero, bad base64 into whatever bytes survive, and a string or number given for a nested
message into an empty one; an integer out of range, a bad timestamp or data nested past
protobuf's recursion limit fail it with a message that does not name the field (or, on the 0.3
path, an internal error). :func:`params_problem` walks the params of an A2A 1.0 method along
the method's protobuf descriptor and names the first field at fault, so every JSON transport
(JSON-RPC here, HTTP+JSON alike) can refuse it with -32602; :func:`v03_params_problem` does the
same for the fields of the A2A 0.3 shapes that its conversion cannot take.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from .messages import MAX_DATA_DEPTH

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_DATA_TYPES = {"google.protobuf.Struct": dict, "google.protobuf.ListValue": list, "google.protobuf.Value": object}
_TEXT_TYPES = {"google.protobuf.Timestamp": "timestamp", "google.protobuf.Duration": "duration"}
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")

Check = tuple[str, Any]
"""How one field is checked: (kind, detail), e.g. ("int", (lo, hi)) or ("message", descriptor)."""
_plans: dict[str, dict[str, tuple[bool, Check]]] = {}


def _check_of(field: FieldDescriptor) -> Check:
    message = field.message_type
    if message is not None:
        if message.GetOptions().map_entry:
            return ("map", None)
        if message.full_name in _DATA_TYPES:
            return ("data", _DATA_TYPES[message.full_name])
        if message.full_name in _TEXT_TYPES:
            return (_TEXT_TYPES[message.full_name], None)
        return ("message", message)
    if field.type in _INT_RANGES:
        return ("int", _INT_RANGES[field.type])
    if field.type == FieldDescriptor.TYPE_ENUM:
        return ("enum", field.enum_type)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return ("bytes", None)
    if field.type == FieldDescriptor.TYPE_STRING:
        return ("string", None)
    return ("other", None)


def _plan(descriptor: Descriptor) -> dict[str, tuple[bool, Check]]:
    """JSON key (and proto name) -> (repeated?, how to check), per message type."""
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        plan = {}
        for field in descriptor.fields:
            check = _check_of(field)
            repeated = field.is_repeated and check[0] != "map"
            plan[field.json_name] = plan[field.name] = (repeated, check)
        _plans[descriptor.full_name] = plan
    return plan


def params_problem(descriptor: Descriptor, value: dict[str, Any], path: str = "params") -> str | None:
    """What is wrong with the first bad field of ``value`` (JSON for message ``descriptor``),
    as ``"<path> must be ..., got ..."``; ``None`` when nothing is."""
    plan = _plan(descriptor)
    for key, item in value.items():
        entry = plan.get(key)
        if entry is None or item is None:
            continue
        repeated, check = entry
        where = f"{path}.{key}"
        if repeated:
            if not isinstance(item, list):
                return f"{where} must be a list, got {_shown(item)}."
            for index, element in enumerate(item):
                problem = _value_problem(check, element, f"{where}[{index}]")
                if problem is not None:
                    return problem
        else:
            problem = _value_problem(check, item, where)
            if problem is not None:
                return problem
    for oneof in descriptor.oneofs:
        given = [f.json_name for f in oneof.fields if value.get(f.json_name, value.get(f.name)) is not None]
        if len(given) > 1 and not oneof.name.startswith("_"):
            choices = ", ".join(f.json_name for f in oneof.fields)
            return f"{path} sets {' and '.join(given)}; it takes exactly one of {choices}."
    return None


def _value_problem(check: Check, item: Any, where: str) -> str | None:
    kind, detail = check
    if kind == "message":
        if not isinstance(item, dict):
            return f"{where} must be an object, got {_shown(item)}."
        return params_problem(detail, item, where)
    if kind == "map":
        return None if isinstance(item, dict) else f"{where} must be an object, got {_shown(item)}."
    if kind == "data":
        if detail is not object and not isinstance(item, detail):
            return f"{where} must be {'an object' if detail is dict else 'a list'}, got {_shown(item)}."
        return _depth_problem(item, where)
    if kind == "int":
        return _int_problem(item, where, *detail)
    if kind == "enum":
        return _enum_problem(detail, item, where)
    if kind == "bytes":
        return _base64_problem(item, where)
    if kind in ("string", "duration") and not isinstance(item, str):
        return f"{where} must be a string, got {_shown(item)}."
    if kind == "timestamp":
        return _timestamp_problem(item, where)
    return None


def _int_problem(item: Any, where: str, low: int, high: int) -> str | None:
    number: int | None = None
    if isinstance(item, int) and not isinstance(item, bool):
        number = item
    elif isinstance(item, float) and item.is_integer():
        number = int(item)
    elif isinstance(item, str) and _INTEGER.fullmatch(item):
        number = int(item)
    if number is None:
        return f"{where} must be a whole number, got {_shown(item)}."
    if not low <= number <= high:
        return f"{where} must be a whole number from {low} to {high}, got {str(number)[:24]}."
    return None


def _enum_problem(enum: EnumDescriptor, item: Any, where: str) -> str | None:
    if isinstance(item, str) and item in enum.values_by_name:
        return None
    if isinstance(item, int) and not isinstance(item, bool) and item in enum.values_by_number:
        return None
    names = ", ".join(v.name for v in enum.values if v.number != 0)
    return f"{where} must be one of {names}, got {_shown(item)}."


def _base64_problem(item: Any, where: str, *, strict: bool = False) -> str | None:
    """Protobuf JSON takes either alphabet, padded or not; ``strict``: standard and padded only."""
    alphabet = "standard alphabet, padded" if strict else "standard or URL-safe alphabet"
    problem = f"{where} must be base64 text ({alphabet}), got {_shown(item)}."
    if not isinstance(item, str) or not _BASE64.fullmatch(item):
        return problem
    body = item if strict else item.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(body if strict else body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return problem
    return None


def _timestamp_problem(item: Any, where: str) -> str | None:
    if isinstance(item, str) and len(item) <= 40:
        try:
            Timestamp().FromJsonString(item)
            return None
        except ValueError:
            pass
    return f"{where} must be an RFC 3339 time such as 2026-01-02T03:04:05Z, got {_shown(item)}."


def _depth_problem(item: Any, where: str) -> str | None:
    if json_depth(item) > MAX_DATA_DEPTH:
        return (
            f"{where} nests objects and lists more than {MAX_DATA_DEPTH} levels deep, the most this agent "
            f"accepts. Flatten the data, or send it as a JSON document in a raw or text part."
        )
    return None


def json_depth(value: Any) -> int:
    """How many levels of objects and lists a JSON value nests (a scalar: 0), counted up to
    one past :data:`MAX_DATA_DEPTH`."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DATA_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _shown(item: Any) -> str:
    return f"{type(item).__name__} {item!r:.40}"


def v03_params_problem(params: dict[str, Any]) -> str | None:
    """The first field of A2A 0.3 params (any 0.3 method) that the SDK's 0.3 conversion cannot
    take: a history length out of range, file bytes that are not base64, data nested too deep."""
    for where, length in (
        ("params.historyLength", params.get("historyLength")),
        ("params.configuration.historyLength", _get(params, "configuration", "historyLength")),
    ):
        # The 0.3 schema takes 5, 5.0 and "5" alike; the conversion after it, only int32.
        if isinstance(length, (int, float, str)) and not isinstance(length, bool):
            problem = _int_problem(length, where, -(2**31), 2**31 - 1)
            if problem is not None:
                return problem
    if isinstance(params.get("metadata"), dict):
        problem = _depth_problem(params["metadata"], "params.metadata")
        if problem is not None:
            return problem
    message = params.get("message")
    if not isinstance(message, dict):
        return None
    if isinstance(message.get("metadata"), dict):
        problem = _depth_problem(message["metadata"], "params.message.metadata")
        if problem is not None:
            return problem
    parts = message.get("parts")
    for index, part in enumerate(parts if isinstance(parts, list) else []):
        if not isinstance(part, dict):
            continue
        where = f"params.message.parts[{index}]"
        file = part.get("file")
        if part.get("kind") == "file" and isinstance(file, dict) and isinstance(file.get("bytes"), str):
            problem = _base64_problem(file["bytes"], f"{where}.file.bytes", strict=True)
        elif part.get("kind") == "data" and isinstance(part.get("data"), (dict, list)):
            problem = _depth_problem(part["data"], f"{where}.data")
        else:
            problem = None
        if problem is None and isinstance(part.get("metadata"), dict):
            problem = _depth_problem(part["metadata"], f"{where}.metadata")
        if problem is not None:
            return problem
    return None


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
