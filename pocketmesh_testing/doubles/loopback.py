"""A small threaded HTTP/1.1 server on loopback, for fakes that real clients dial.

Keep-alive is on and Nagle's algorithm off: with ``http.server`` defaults each request on a
kept-alive connection waits ~40 ms for a delayed ACK, which makes tests crawl.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pocketmesh_testing.doubles.llm_replies import WireResponse

__all__ = ["Handler", "LoopbackServer"]

Handler = Callable[[str, str, Mapping[str, str], bytes], WireResponse]
"""Turns (method, path with query, headers, body) into a response."""


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.handler(self.command, self.path, headers, body)
        self.send_response(response.status)
        streamed = response.headers.get("content-type", "").startswith("text/event-stream")
        for name, value in response.headers.items():
            self.send_header(name, value)
        if streamed:
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for chunk in response.chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            data = response.body
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines would flood the captured output of every test.
        return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every kept-alive connection: a client must not reach this server's handler
        through them once it is closed (another server may take the port next)."""
        with self.connections_lock:
            open_connections, self.connections = list(self.connections), set()
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 from a background thread until ``close()``."""

    def __init__(self, handler: Handler, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _RequestHandler)
        self._server.handler = handler
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="pocketmesh-loopback", daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)


def free_port() -> int:
    """A currently unused loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
