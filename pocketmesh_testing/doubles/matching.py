"""How a cassette matches a request to a recording, and how a miss says why none matched.

Requests match on method, scheme, host, port (not on loopback, where test servers take a fresh
port each run), path, query and body, JSON bodies by structure. A miss names the request and
the closest recorded one, and shows *where* each differing value differs: the first differing
character with some context on both sides, so a difference at the end of a long prompt is not
hidden behind two identical-looking prefixes.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical_body", "describe", "differences", "loopback_port", "request_key", "where_they_differ"]

_CONTEXT = 30
"""Characters shown on each side of the first difference."""


def canonical_body(body: Any) -> str | bytes:
    """A JSON body as sorted, compact JSON text; any other body as it is."""
    if body is None:
        return b""
    if not isinstance(body, (bytes, str)):
        # aiohttp hands vcrpy its ``json=`` / ``data=`` argument as the Python object itself.
        try:
            return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError):
            return repr(body).encode()
    text = body if isinstance(body, str) else None
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        return text.encode() if text is not None else body  # type: ignore[return-value]


def _is_loopback(host: str | None) -> bool:
    return bool(host) and (host == "localhost" or str(host).startswith("127.") or str(host).strip("[]") == "::1")


def loopback_port(request: Any) -> int | None:
    """The port to match on: none on loopback, where each test server gets a fresh one."""
    return None if _is_loopback(request.host) else request.port


def request_key(request: Any) -> tuple[Any, ...]:
    """Everything a request is matched on, as one hashable key."""
    return (request.method, request.scheme, request.host, loopback_port(request), request.path or "/",
            tuple(request.query), canonical_body(request.body))


def where_they_differ(recorded: Any, sent: Any) -> str:
    """``recorded X != sent Y``, cut around the first differing character when the values are long."""
    a, b = (v if isinstance(v, str) else repr(v) for v in (recorded, sent))
    if not (isinstance(recorded, str) and isinstance(sent, str)) or max(len(a), len(b)) <= 2 * _CONTEXT + 20:
        return f"recorded {recorded!r} != sent {sent!r}"
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, at - _CONTEXT)

    def window(text: str) -> str:
        head = "..." if start else ""
        tail = "..." if at + _CONTEXT < len(text) else ""
        return head + repr(text[start:at + _CONTEXT])[1:-1] + tail

    lengths = f" ({len(a)} and {len(b)} characters)" if len(a) != len(b) else ""
    return f"differs at character {at}{lengths}: recorded '{window(a)}' != sent '{window(b)}'"


def _json_diff(recorded: Any, sent: Any, path: str = "$", limit: int = 5) -> list[str]:
    if isinstance(recorded, dict) and isinstance(sent, dict):
        out: list[str] = []
        for key in sorted(set(recorded) | set(sent), key=str):
            if key not in sent:
                out.append(f"{path}.{key}: recorded {recorded[key]!r:.60}, missing from the request")
            elif key not in recorded:
                out.append(f"{path}.{key}: sent {sent[key]!r:.60}, not in the recording")
            else:
                out.extend(_json_diff(recorded[key], sent[key], f"{path}.{key}", limit))
            if len(out) >= limit:
                break
        return out[:limit]
    if isinstance(recorded, list) and isinstance(sent, list):
        out = []
        if len(recorded) != len(sent):
            out.append(f"{path}: recorded {len(recorded)} item(s), sent {len(sent)}")
        for index, (a, b) in enumerate(zip(recorded, sent)):
            out.extend(_json_diff(a, b, f"{path}[{index}]", limit))
            if len(out) >= limit:
                break
        return out[:limit]
    if recorded != sent:
        return [f"{path}: {where_they_differ(recorded, sent)}"]
    return []


def differences(stored: Any, request: Any) -> list[str]:
    """How ``request`` differs from the recorded ``stored`` one, field by field."""
    def value(request: Any, name: str) -> Any:
        return loopback_port(request) if name == "port" else getattr(request, name)  # loopback: any port

    out = [f"{name}: {where_they_differ(getattr(stored, name), getattr(request, name))}"
           for name in ("method", "scheme", "host", "port", "path", "query")
           if value(stored, name) != value(request, name)]
    a, b = canonical_body(stored.body), canonical_body(request.body)
    if a != b:
        if isinstance(a, str) and isinstance(b, str):
            out.extend(f"body {d}" for d in _json_diff(json.loads(a), json.loads(b)))
        else:
            text_a = a.decode("utf-8", "replace") if isinstance(a, bytes) else a
            text_b = b.decode("utf-8", "replace") if isinstance(b, bytes) else b
            out.append(f"body: {where_they_differ(text_a, text_b)}")
    return out


def describe(request: Any) -> str:
    """``METHOD URI body ...`` with the body cut at 300 characters."""
    body = request.body
    shown = ""
    if body:
        canonical = canonical_body(body)
        text = canonical if isinstance(canonical, str) else repr(canonical)
        shown = f" body {text[:300]}{'...' if len(text) > 300 else ''}"
    return f"{request.method} {request.uri}{shown}"
