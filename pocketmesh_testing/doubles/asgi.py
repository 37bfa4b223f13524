"""An httpx transport that serves an ASGI app in-process and really streams its responses.

httpx's own ``ASGITransport`` runs the app to the end before it returns the response, so a
server-sent-event stream arrives all at once, after the flow has finished. Here the response
is returned as soon as the app starts it, and each body chunk reaches the client when the app
sends it — a streaming test sees events in the order and at the time a real client would.
The app's lifespan (startup / shutdown) is driven by :class:`Lifespan`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx

__all__ = ["Lifespan", "StreamingASGITransport"]

ASGIApp = Any
Message = MutableMapping[str, Any]

_END = object()


class _BodyStream(httpx.AsyncByteStream):
    """The response body as the app sends it; closing it early tells the app the client left."""

    def __init__(self, chunks: asyncio.Queue[Any], app_task: asyncio.Task[None], closed: asyncio.Event) -> None:
        self._chunks = chunks
        self._app_task = app_task
        self._closed = closed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._chunks.get()
            if chunk is _END:
                break
            yield chunk
        # Like httpx's ASGITransport, an exception the app raised (after its 500 answer) reaches
        # the test instead of vanishing with the server's log.
        try:
            await asyncio.wait_for(asyncio.shield(self._app_task), 5.0)
        except asyncio.TimeoutError:
            pass

    async def aclose(self) -> None:
        self._closed.set()
        if not self._app_task.done():
            # The app may be waiting on the disconnect we just signalled; give it a moment
            # to finish on its own before it is cancelled.
            try:
                await asyncio.wait_for(asyncio.shield(self._app_task), 1.0)
            except (asyncio.TimeoutError, Exception):
                self._app_task.cancel()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Send httpx requests to an ASGI ``app`` in this event loop, streaming the responses."""

    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        body_sent = False
        client_gone = asyncio.Event()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[Any] = asyncio.Queue()

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await client_gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result((int(message["status"]), list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                data = message.get("body", b"")
                if data and request.method != "HEAD":
                    await chunks.put(bytes(data))
                if not message.get("more_body", False):
                    await chunks.put(_END)

        async def run_app() -> None:
            try:
                await self.app(scope, receive, send)
            except BaseException as error:
                if not started.done():
                    started.set_exception(error)
                raise
            finally:
                if not started.done():
                    started.set_exception(RuntimeError("the ASGI app returned without starting a response"))
                await chunks.put(_END)

        app_task = asyncio.create_task(run_app())
        status, headers = await started
        return httpx.Response(status, headers=headers, stream=_BodyStream(chunks, app_task, client_gone), request=request)


class Lifespan:
    """Runs an ASGI app's lifespan protocol: ``await start()`` before use, ``await stop()`` after."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._supported = True

    async def start(self) -> None:
        """Send ``lifespan.startup`` and wait for the app to be ready."""

        async def run() -> None:
            try:
                await self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, self._inbox.get, self._outbox.put)
            except Exception:
                # Apps without lifespan support raise on the unknown scope; that is allowed.
                self._supported = False
                await self._outbox.put({"type": "lifespan.unsupported"})

        self._task = asyncio.create_task(run())
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._outbox.get()
        if reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the agent app failed to start: {reply.get('message', '')}")

    async def stop(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the app to finish it."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._supported and not task.done():
            await self._inbox.put({"type": "lifespan.shutdown"})
            await self._outbox.get()
        await asyncio.wait_for(task, 10)
