"""A TCP proxy on loopback that a test can pause (bytes wait, connections stay open) or cut
(connections reset, new ones refused), to put a real network fault between a client and a
real server."""

from __future__ import annotations

import asyncio
import contextlib
import socket


class Proxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream``; :meth:`pause`, :meth:`cut`, :meth:`restore`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> Proxy:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)
        return self

    def pause(self) -> None:
        """Stop forwarding: requests reach nobody, answers come back to nobody, until restored."""
        self._flowing.clear()

    def cut(self) -> None:
        """Reset every connection and refuse new ones, as a server that went away."""
        self._refusing = True
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        """Forward again, and accept connections again."""
        self._refusing = False
        self._flowing.set()

    async def close(self) -> None:
        self.cut()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                data = await source.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        sink.transport.abort()
