"""The OpenAI Responses API (``POST /responses``) as the fake LLM speaks it.

The same scripted replies answer it: a text reply becomes a ``message`` output item holding one
``output_text`` part (so the SDK's ``response.output_text`` reads it), a tool-call reply a
``function_call`` output item with JSON-string ``arguments``, and a streaming request
(``stream: true``) gets the typed server-sent events the real API sends, from
``response.created`` to ``response.completed``, one ``response.output_text.delta`` per
scripted chunk. A request asking for structured output (``text.format`` of type
``json_schema`` or ``json_object``) must be answered with JSON: a scripted reply that is not
fails the call, naming the format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pocketmesh_testing.errors import ReplyMismatchError
from pocketmesh_testing.doubles.llm_replies import (
    MadeUp,
    Reply,
    StreamReply,
    TextReply,
    ToolCallReply,
    WireResponse,
    _created,
    _making_up,
    call_id,
    new_id,
    sse_events,
)

__all__ = ["is_responses_path", "render_response", "request_messages"]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat-style finish reasons that end a response ``incomplete``, and the reason it gives."""


def is_responses_path(path: str) -> bool:
    """True for a Responses API request path (``.../responses``)."""
    return path.split("?", 1)[0].rstrip("/").endswith("/responses")


def request_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's ``input`` as chat-style messages: a string is one user message; items
    with a role are kept as they are (tool outputs and other items are left out)."""
    given = body.get("input")
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    if isinstance(given, list):
        return [dict(item) for item in given if isinstance(item, Mapping) and "role" in item]
    return []


def render_response(
    reply: Reply, *, model: str, stream: bool, request: Any, made_up: MadeUp | None = None
) -> WireResponse:
    """``reply`` as the answer to a Responses API request (JSON, or typed SSE events); ids and
    times come from ``made_up`` (the fake's own source), as for the other wire formats."""
    body = request if isinstance(request, Mapping) else {}
    _check_format(reply, body)
    with _making_up(made_up if made_up is not None else MadeUp()):
        response = _response(reply, model, body)
    if not stream:
        return WireResponse(200, {"content-type": "application/json"}, [json.dumps(response).encode()])
    return WireResponse(200, {"content-type": "text/event-stream", "cache-control": "no-cache"},
                        sse_events(_events(reply, response), named=True))


def _text(reply: Reply) -> str:
    if isinstance(reply, StreamReply):
        return "".join(reply.chunks)
    return reply.text if isinstance(reply, TextReply) else ""


def _requested_format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, Mapping) else None
    return fmt if isinstance(fmt, Mapping) else None


def _check_format(reply: Reply, body: Mapping[str, Any]) -> None:
    fmt = _requested_format(body)
    if fmt is None or fmt.get("type") not in ("json_schema", "json_object") or isinstance(reply, ToolCallReply):
        return
    what = f"text.format {fmt.get('type')}" + (f" {fmt['name']!r}" if fmt.get("name") else "")
    text = _text(reply)
    try:
        value = json.loads(text)
    except ValueError:
        raise ReplyMismatchError(
            f"the request asks for structured output ({what}) but the scripted reply {text!r:.80} "
            f"is not JSON; script it as JSON, e.g. fake_llm.reply(json.dumps({{...}}))."
        ) from None
    schema = fmt.get("schema")
    if isinstance(schema, Mapping) and schema.get("type") == "object":
        missing = [k for k in schema.get("required", ()) if not isinstance(value, dict) or k not in value]
        if not isinstance(value, dict) or missing:
            raise ReplyMismatchError(
                f"the request asks for structured output ({what}), an object with "
                f"{', '.join(map(repr, schema.get('required', ()))) or 'no required keys'}, but the "
                f"scripted reply {text!r:.80} " + (f"lacks {', '.join(map(repr, missing))}" if
                                                   isinstance(value, dict) else "is not an object")
                + "; script a reply that fits the schema."
            )


def _output_item(reply: Reply) -> dict[str, Any]:
    if isinstance(reply, ToolCallReply):
        return {"type": "function_call", "id": new_id("fc"), "call_id": call_id(reply), "name": reply.name,
                "arguments": reply.arguments_json, "status": "completed"}
    content = [{"type": "output_text", "text": _text(reply), "annotations": [], "logprobs": []}]
    return {"type": "message", "id": new_id("msg"), "role": "assistant", "status": "completed", "content": content}


def _response(reply: Reply, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
    finish = reply.finish_reason if isinstance(reply, (TextReply, StreamReply)) else "stop"
    incomplete = _INCOMPLETE.get(finish)
    return {
        "id": new_id("resp"), "object": "response", "created_at": _created(),
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "error": None, "model": model, "output": [_output_item(reply)],
        "instructions": body.get("instructions"), "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature"), "top_p": body.get("top_p"),
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "text": {"format": _requested_format(body) or {"type": "text"}},
        "previous_response_id": body.get("previous_response_id"),
        "usage": {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0},
    }


def _events(reply: Reply, response: dict[str, Any]) -> list[dict[str, Any]]:
    """The typed stream of one response, in the order the real API sends it."""
    final = response["output"][0]
    started = {**response, "status": "in_progress", "incomplete_details": None, "output": []}
    # The item as first announced: the same ids, nothing generated yet.
    empty = {"arguments": ""} if final["type"] == "function_call" else {"content": []}
    item = {**final, **empty, "status": "in_progress"}
    where = {"item_id": final["id"], "output_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
    ]
    if isinstance(reply, ToolCallReply):
        events += [
            {"type": "response.function_call_arguments.delta", **where, "delta": final["arguments"]},
            {"type": "response.function_call_arguments.done", **where, "arguments": final["arguments"],
             "name": final["name"]},
        ]
    else:
        text = final["content"][0]["text"]
        pieces = list(reply.chunks) if isinstance(reply, StreamReply) else [text]
        part = {"type": "output_text", "text": "", "annotations": []}
        events.append({"type": "response.content_part.added", **where, "content_index": 0, "part": part})
        events += [{"type": "response.output_text.delta", **where, "content_index": 0, "delta": piece,
                    "logprobs": []} for piece in pieces if piece]
        events += [
            {"type": "response.output_text.done", **where, "content_index": 0, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **where, "content_index": 0, "part": {**part, "text": text}},
        ]
    ending = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    events += [{"type": "response.output_item.done", "output_index": 0, "item": final},
               {"type": ending, "response": response}]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]
