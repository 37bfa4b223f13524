"""``FakeLLM``: a scripted, strict, OpenAI-compatible chat model for tests.

It speaks chat completions, the Responses API and Anthropic messages, each from the same
scripted replies (see :mod:`~pocketmesh_testing.doubles.llm_replies` and
:mod:`~pocketmesh_testing.doubles.responses_api`).

Script replies in the order the code under test will ask for them; each request consumes
the next one. A request with nothing scripted fails naming the request, and replies left
unused fail the test at teardown. The same fake answers through an in-process transport
(``openai_client()``, ``httpx_transport()``, respx) or a real loopback server (``base_url``).

The openai SDK retries 408/409/429/5xx answers by itself (``max_retries=2`` by default).
Scripted failures carry ``retry-after-ms: 1`` unless ``retry_after`` is given, so those
retries are immediate; a test of a 429 should either script a reply for each retry or build
the client with ``openai_client(max_retries=0)``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Union
from urllib.parse import urlsplit

from pocketmesh_testing.errors import ReplyMismatchError, UnscriptedCallError, UnusedRepliesError
from pocketmesh_testing.doubles.llm_replies import (
    ErrorReply,
    MadeUp,
    RawReply,
    Reply,
    StreamReply,
    TextReply,
    ToolCallReply,
    WireResponse,
    render,
)
from pocketmesh_testing.doubles.loopback import LoopbackServer
from pocketmesh_testing.doubles.fake_call import FakeCall, parse_body
from pocketmesh_testing.doubles.responses_api import render_response

__all__ = ["FakeCall", "FakeLLM", "Responder", "fake_llm_hosts"]

INPROCESS_BASE_URL = "http://fake-llm.invalid/v1"
"""Base URL of in-process clients; ``.invalid`` can never resolve, so nothing leaks out."""

_active_hosts: set[str] = {urlsplit(INPROCESS_BASE_URL).netloc}


def fake_llm_hosts() -> frozenset[str]:
    """``host:port`` of every fake LLM endpoint in this process (cassettes leave them alone)."""
    return frozenset(_active_hosts)


Responder = Callable[[FakeCall], Union[str, Reply, Mapping[str, Any]]]
"""A function of the request: returns text, a reply object, or a raw JSON body."""


@dataclass
class _Entry:
    label: str
    reply: Reply | None = None
    responder: Responder | None = None
    remaining: int | None = 1  # None: answers every call from here on
    used: int = 0


@dataclass
class FakeLLM:
    """A scripted OpenAI-compatible chat model (also answers the Responses API's ``/responses``
    and Anthropic-style ``/messages``)."""

    model: str = "fake-model"
    api_key: str = "sk-fake-pocketmesh"
    calls: list[FakeCall] = field(default_factory=list)
    unscripted: list[FakeCall] = field(default_factory=list)
    misused: list[str] = field(default_factory=list)
    """Why scripted replies could not answer the requests they met (a stream for a plain call)."""
    _script: deque[_Entry] = field(default_factory=deque)
    _done: list[_Entry] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None
    port: int = 0
    """Port of the loopback server (0: any free port); fixed when another process must know it."""
    made_up: MadeUp = field(default_factory=MadeUp)
    """This fake's ids (``call_fake_1``, ``chatcmpl-fake-2``, ...) and fixed ``created`` time: the
    same in a test whatever ran before it."""

    # -- scripting -------------------------------------------------------------------------

    def reply(self, text: str, *, finish_reason: str = "stop") -> FakeLLM:
        """Answer the next request with an assistant message holding ``text``."""
        return self._add(_Entry(f"reply({_short(text)})", TextReply(text, finish_reason)))

    def reply_stream(self, chunks: Iterable[str], *, finish_reason: str = "stop") -> FakeLLM:
        """Answer the next request with ``chunks`` streamed as server-sent events."""
        pieces = list(chunks)
        if isinstance(chunks, str) or not all(isinstance(p, str) for p in pieces):
            raise TypeError(
                f"reply_stream(chunks) takes a list of strings, got {chunks!r}; "
                f"write reply_stream(['Hel', 'lo']) (or reply('Hello') for one piece)."
            )
        return self._add(_Entry(f"reply_stream({pieces!r:.60})", StreamReply(pieces, finish_reason)))

    def reply_tool_call(
        self, name: str, arguments: Mapping[str, Any] | str | None = None, *, call_id: str | None = None
    ) -> FakeLLM:
        """Answer the next request with a call of tool ``name`` with ``arguments``."""
        reply = ToolCallReply(name, arguments if arguments is not None else {}, call_id)
        return self._add(_Entry(f"reply_tool_call({name!r})", reply))

    def fail(
        self,
        status: int = 500,
        *,
        message: str | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> FakeLLM:
        """Answer the next ``times`` requests with HTTP ``status`` in the provider's error shape."""
        if not 400 <= status <= 599:
            raise ValueError(f"fail(status={status!r}) needs an HTTP error status (400-599).")
        extra = dict(headers or {})
        if retry_after is None:
            extra.setdefault("retry-after-ms", "1")  # the SDK retries at once (see module doc)
        reply = ErrorReply(status, message, retry_after, error_type, code, extra)
        for _ in range(times):
            self._add(_Entry(f"fail(status={status})", reply))
        return self

    def respond_with(self, fn: Responder, *, times: int | None = None) -> FakeLLM:
        """Answer with ``fn(call)``: every following request, or the next ``times`` ones."""
        if not callable(fn):
            raise TypeError(f"respond_with(fn) takes a function of the request, got {fn!r}.")
        label = f"respond_with({getattr(fn, '__name__', repr(fn))})"
        return self._add(_Entry(label, responder=fn, remaining=times))

    def _add(self, entry: _Entry) -> FakeLLM:
        with self._lock:
            self._script.append(entry)
        return self

    # -- answering --------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> WireResponse:
        """Answer one HTTP request; raises ``UnscriptedCallError`` if nothing is scripted."""
        call = FakeCall(method.upper(), path, {k.lower(): v for k, v in headers.items()}, parse_body(body))
        with self._lock:
            self.calls.append(call)
            entry = self._script[0] if self._script else None
            if entry is None:
                self.unscripted.append(call)
            else:
                entry.used += 1
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._done.append(self._script.popleft())
        if entry is None:
            raise UnscriptedCallError(self._unscripted_message(call))
        reply = entry.reply if entry.reply is not None else _coerce(entry.responder(call))  # type: ignore[misc]
        if isinstance(reply, StreamReply) and not call.stream:
            # Strict: a streamed answer scripted for a plain call means the code asks differently
            # than the test thinks; joining the chunks would hide that.
            message = (f"fake_llm: {entry.label} scripts a streamed answer, but the request is not streamed "
                       f"(stream=True not set): {call}. Script reply('...') for a plain call, or make the "
                       f"code stream.")
            with self._lock:
                self.misused.append(message)
            raise ReplyMismatchError(message)
        call.reply = reply
        if call.dialect == "responses" and not isinstance(reply, (ErrorReply, RawReply)):
            return render_response(reply, model=call.model or self.model, stream=call.stream, request=call.body,
                                   made_up=self.made_up)
        return render(reply, dialect=call.dialect, model=call.model or self.model, stream=call.stream,
                      made_up=self.made_up)

    def _unscripted_message(self, call: FakeCall) -> str:
        answered = len(self.calls) - len(self.unscripted)
        return (
            f"fake_llm got a request with nothing scripted to answer it: {call}. "
            f"{answered} earlier request(s) were answered. Script the answer before the code "
            f"runs: fake_llm.reply('...'), .reply_stream([...]), .reply_tool_call(name, args), "
            f".fail(status=...) or .respond_with(fn)."
        )

    # -- clients ----------------------------------------------------------------------------

    def openai_client(self, **kwargs: Any) -> Any:
        """A real ``openai.AsyncOpenAI`` wired to this fake in-process (kwargs go to the client)."""
        import openai

        module = _sdk_http_module()
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", INPROCESS_BASE_URL)
        kwargs.setdefault("http_client", module.AsyncClient(transport=self.httpx_transport(module)))
        return openai.AsyncOpenAI(**kwargs)

    def sync_openai_client(self, **kwargs: Any) -> Any:
        """A real ``openai.OpenAI`` wired to this fake in-process."""
        import openai

        module = _sdk_http_module()
        kwargs.setdefault("api_key", self.api_key)
        kwargs.setdefault("base_url", INPROCESS_BASE_URL)
        kwargs.setdefault("http_client", module.Client(transport=self.httpx_transport(module)))
        return openai.OpenAI(**kwargs)

    def httpx_transport(self, module: ModuleType | None = None) -> Any:
        """A ``MockTransport`` of ``module`` (httpx by default, or httpx2) answering as this fake."""
        if module is None:
            import httpx as module

        def handler(request: Any) -> Any:
            return self._to_httpx(module, request)

        return module.MockTransport(handler)

    def respx_side_effect(self, request: Any) -> Any:
        """A respx side effect: ``respx_mock.post(url).mock(side_effect=fake_llm.respx_side_effect)``."""
        import httpx

        return self._to_httpx(httpx, request)

    def route_respx(self, router: Any, base_url: str = "https://api.openai.com/v1") -> None:
        """Route chat completions, responses and messages under ``base_url`` on a respx router to this fake."""
        base = base_url.rstrip("/")
        for suffix in ("/chat/completions", "/responses", "/messages"):
            router.post(base + suffix).mock(side_effect=self.respx_side_effect)

    def _to_httpx(self, module: ModuleType, request: Any) -> Any:
        url = request.url
        target = url.raw_path.decode() if hasattr(url, "raw_path") else str(url.path)
        wire = self.handle(request.method, target, dict(request.headers), request.content)
        return module.Response(wire.status, headers=wire.headers, content=wire.body)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` of a loopback server for this fake, started on first use."""
        with self._lock:
            if self._server is None:
                self._server = LoopbackServer(self._serve_http, port=self.port)
                _active_hosts.add(f"127.0.0.1:{self._server.port}")
            return f"{self._server.url}/v1"

    @contextmanager
    def environment(self) -> Iterator[None]:
        """Point ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` at this fake for the block, then restore
        them: an ``openai`` client made inside (``AsyncOpenAI()`` with no arguments) talks to it."""
        values = {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": self.api_key}
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _serve_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> WireResponse:
        try:
            return self.handle(method, path, headers, body)
        except (UnscriptedCallError, ReplyMismatchError) as error:
            # Over HTTP the error must travel as a response; 400 with x-should-retry: false
            # makes the SDK raise at once with this message instead of retrying.
            kind = "unscripted_call" if isinstance(error, UnscriptedCallError) else "reply_mismatch"
            failure = ErrorReply(400, str(error), error_type=f"pocketmesh_{kind}",
                                 headers={"x-should-retry": "false"})
            return render(failure, dialect="openai", model=self.model, stream=False, made_up=self.made_up)

    # -- verification -----------------------------------------------------------------------

    @property
    def pending(self) -> list[str]:
        """Scripted answers not yet used, described as they were scripted."""
        with self._lock:
            return [e.label for e in self._script if e.remaining is not None or e.used == 0]

    def verify(self) -> None:
        """Raise if a request went unscripted or scripted answers were never used."""
        if self.unscripted:
            shown = "; ".join(str(c) for c in self.unscripted)
            raise UnscriptedCallError(
                f"fake_llm got {len(self.unscripted)} request(s) with nothing scripted: {shown}. "
                f"Script an answer for each (fake_llm.reply(...), .respond_with(fn), ...)."
            )
        if self.misused:
            raise ReplyMismatchError(self.misused[0])
        pending = self.pending
        if pending:
            made = "; ".join(str(c) for c in self.calls) or "none"
            raise UnusedRepliesError(
                f"{len(pending)} scripted fake_llm answer(s) were never requested: "
                f"{', '.join(pending)}. Requests made ({len(self.calls)}): {made}. Remove the "
                f"extra answers, or find out why the code stopped calling the model."
            )

    def reset(self) -> None:
        """Forget the script and the recorded calls."""
        with self._lock:
            self._script.clear()
            self._done.clear()
            self.calls.clear()
            self.unscripted.clear()
            self.misused.clear()

    def close(self) -> None:
        """Stop the loopback server, if one was started."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            _active_hosts.discard(f"127.0.0.1:{server.port}")
            server.close()


def _sdk_http_module() -> ModuleType:
    # openai 3.x sends through httpx2, 2.x through httpx: use whichever the SDK imported.
    from openai import _base_client

    module = getattr(_base_client, "httpx2", None) or getattr(_base_client, "httpx")
    return module  # type: ignore[no-any-return]


def _coerce(value: Any) -> Reply:
    if isinstance(value, (TextReply, StreamReply, ToolCallReply, ErrorReply, RawReply)):
        return value
    if isinstance(value, str):
        return TextReply(value)
    if isinstance(value, Mapping):
        return RawReply(dict(value))
    raise TypeError(
        f"a respond_with function returned {value!r}; return a str (the reply text), a reply "
        f"object from pocketmesh_testing (TextReply, StreamReply, ToolCallReply, ErrorReply) "
        f"or a dict (sent as the JSON body)."
    )


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
