"""Scripted fake LLM replies and their rendering as OpenAI or Anthropic wire responses.

A reply is written once, independent of the wire format, and rendered for the request
that consumes it: a plain reply answers a streaming request as a one-chunk stream, a
streamed reply renders for a plain request as the joined text (``FakeLLM`` refuses that pairing:
it is strict), and an OpenAI-style request (``/chat/completions``) or an Anthropic-style one
(``/messages``) each get their own shape (the Responses API's, ``/responses``, is in
:mod:`pocketmesh_testing.doubles.responses_api`).

Every value a rendering makes up (tool-call ids, response ids, the ``created`` time) comes from
the :class:`MadeUp` source it is given, one per fake: a test sees the same values whatever ran
before it in the process, so snapshots of them do not depend on test order.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "FIXED_CREATED",
    "ErrorReply",
    "MadeUp",
    "RawReply",
    "Reply",
    "StreamReply",
    "TextReply",
    "ToolCallReply",
    "WireResponse",
]

FIXED_CREATED = 1_700_000_000
"""The ``created`` time of every fake response (2023-11-14T22:13:20Z): fixed, so it never moves."""


class MadeUp:
    """The values one fake makes up: ids numbered from 1, and a fixed clock."""

    def __init__(self, created: int = FIXED_CREATED) -> None:
        self.created = created
        self._next = 1
        self._lock = threading.Lock()  # the loopback server answers from several threads

    def number(self) -> int:
        """The next id number of this source."""
        with self._lock:
            number, self._next = self._next, self._next + 1
            return number

    def peek(self) -> int:
        """The number the next id will get."""
        with self._lock:
            return self._next

    def restart(self, at: int = 1) -> None:
        """Number ids from ``at`` again: a replayed answer gets the ids it had the first time."""
        with self._lock:
            self._next = at


_source: contextvars.ContextVar[MadeUp | None] = contextvars.ContextVar("pocketmesh_made_up", default=None)


class _CurrentIds:
    """``next(_ids)``: the next number of the source the current rendering was given."""

    def __iter__(self) -> _CurrentIds:
        return self

    def __next__(self) -> int:
        return _current().number()


_ids = _CurrentIds()


def _current() -> MadeUp:
    made = _source.get()
    if made is None:
        raise RuntimeError("fake LLM ids are made while rendering a reply; call render(...), not its helpers.")
    return made


def _created() -> int:
    return _current().created


@contextmanager
def _making_up(source: MadeUp) -> Iterator[None]:
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


@dataclass(frozen=True)
class WireResponse:
    """An HTTP response ready to send: status, headers and the body chunks."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes]

    @property
    def body(self) -> bytes:
        """The whole body."""
        return b"".join(self.chunks)


@dataclass(frozen=True)
class TextReply:
    """An assistant message with text content."""

    text: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class StreamReply:
    """An assistant message delivered as several streamed chunks."""

    chunks: Sequence[str]
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ToolCallReply:
    """An assistant message asking for one tool call."""

    name: str
    arguments: Mapping[str, Any] | str
    call_id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments as the JSON string the wire carries."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error in the provider's error shape."""

    status: int = 500
    message: str | None = None
    retry_after: float | None = None
    error_type: str | None = None
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RawReply:
    """A JSON body sent as is (for shapes the helpers do not cover)."""

    body: Any
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


Reply = Union[TextReply, StreamReply, ToolCallReply, ErrorReply, RawReply]
"""Anything the fake can answer with."""

_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "overloaded_error",
}


def render(reply: Reply, *, dialect: str, model: str, stream: bool, made_up: MadeUp | None = None) -> WireResponse:
    """Render ``reply`` as the response to a request of ``dialect`` ('openai' / 'anthropic').

    Ids and times come from ``made_up`` (the fake's own source); without one, from a fresh
    source, so a reply rendered on its own always reads the same.
    """
    with _making_up(made_up if made_up is not None else MadeUp()):
        return _render(reply, dialect=dialect, model=model, stream=stream)


def _render(reply: Reply, *, dialect: str, model: str, stream: bool) -> WireResponse:
    if isinstance(reply, ErrorReply):
        return _render_error(reply, dialect)
    if isinstance(reply, RawReply):
        return _json(reply.body, reply.status, dict(reply.headers))
    if dialect == "anthropic":
        return _anthropic_stream(reply, model) if stream else _json(_anthropic_message(reply, model))
    return _openai_stream(reply, model) if stream else _json(_openai_completion(reply, model))


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> WireResponse:
    data = json.dumps(body).encode()
    return WireResponse(status, {"content-type": "application/json", **(headers or {})}, [data])


def _render_error(reply: ErrorReply, dialect: str) -> WireResponse:
    message = reply.message or f"scripted fake LLM error (HTTP {reply.status})"
    kind = reply.error_type or _ERROR_TYPES.get(reply.status, "api_error")
    headers = {k.lower(): v for k, v in reply.headers.items()}
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
        headers["retry-after-ms"] = f"{reply.retry_after * 1000:g}"
    if dialect == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": reply.code}}
    return _json(body, reply.status, headers)


def _text_of(reply: Reply) -> str | None:
    if isinstance(reply, TextReply):
        return reply.text
    if isinstance(reply, StreamReply):
        return "".join(reply.chunks)
    return None


def _call_id(reply: ToolCallReply) -> str:
    return reply.call_id or f"call_fake_{next(_ids)}"


def call_id(reply: ToolCallReply) -> str:
    """The id of the tool call ``reply`` asks for: its own, or a fresh fake one."""
    return _call_id(reply)


def new_id(prefix: str) -> str:
    """A fresh id for a fake response object: ``resp_fake_1``, ``msg_fake_2``..."""
    return f"{prefix}_fake_{next(_ids)}"


def _openai_completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": _text_of(reply), "refusal": None}
    finish = "stop"
    if isinstance(reply, ToolCallReply):
        finish = "tool_calls"
        message["tool_calls"] = [{
            "id": _call_id(reply), "type": "function",
            "function": {"name": reply.name, "arguments": reply.arguments_json},
        }]
    elif isinstance(reply, (TextReply, StreamReply)):
        finish = reply.finish_reason
    return {
        "id": f"chatcmpl-fake-{next(_ids)}", "object": "chat.completion", "created": _created(),
        "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish,
                                     "logprobs": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def sse_events(events: list[dict[str, Any]], *, named: bool) -> list[bytes]:
    """``events`` as server-sent events (``event:`` lines too when ``named``), no ``[DONE]``."""
    return _sse(events, done=False, named=named)


def _sse(events: list[dict[str, Any]], *, done: bool, named: bool = False) -> list[bytes]:
    out = []
    for event in events:
        head = f"event: {event['type']}\n" if named else ""
        out.append(f"{head}data: {json.dumps(event)}\n\n".encode())
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}


def _openai_stream(reply: Reply, model: str) -> WireResponse:
    base = {"id": f"chatcmpl-fake-{next(_ids)}", "object": "chat.completion.chunk",
            "created": _created(), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    events = [chunk({"role": "assistant", "content": ""})]
    if isinstance(reply, ToolCallReply):
        events.append(chunk({"tool_calls": [{
            "index": 0, "id": _call_id(reply), "type": "function",
            "function": {"name": reply.name, "arguments": reply.arguments_json},
        }]}))
        events.append(chunk({}, "tool_calls"))
    else:
        pieces = list(reply.chunks) if isinstance(reply, StreamReply) else [_text_of(reply) or ""]
        events.extend(chunk({"content": piece}) for piece in pieces)
        finish = reply.finish_reason if isinstance(reply, (TextReply, StreamReply)) else "stop"
        events.append(chunk({}, finish))
    return WireResponse(200, dict(_SSE_HEADERS), _sse(events, done=True))


def _anthropic_message(reply: Reply, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]]
    if isinstance(reply, ToolCallReply):
        arguments = json.loads(reply.arguments_json)
        content = [{"type": "tool_use", "id": _call_id(reply), "name": reply.name, "input": arguments}]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": _text_of(reply) or ""}]
        stop = "end_turn"
    return {"id": f"msg_fake_{next(_ids)}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}


def _anthropic_stream(reply: Reply, model: str) -> WireResponse:
    message = _anthropic_message(reply, model)
    block = message["content"][0]
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {**message, "content": [],
                                                                         "stop_reason": None}}]
    if block["type"] == "tool_use":
        events.append({"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}})
        events.append({"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
    else:
        events.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        pieces = list(reply.chunks) if isinstance(reply, StreamReply) else [block["text"]]
        events.extend({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": piece}} for piece in pieces)
    events.append({"type": "content_block_stop", "index": 0})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                      "stop_sequence": None},
                   "usage": {"output_tokens": 0}})
    events.append({"type": "message_stop"})
    return WireResponse(200, dict(_SSE_HEADERS), _sse(events, done=False, named=True))
