"""The gRPC transport: the SDK's A2A servicer on a ``grpc.aio`` server beside the ASGI app.

gRPC is not ASGI, so it cannot be a route: :func:`~pocketmesh.a2a.create_a2a_app` with
``grpc_port=`` builds a :class:`GrpcServer` and the app's lifespan starts it (on the app's event
loop, when the ASGI server starts) and stops it (at shutdown). It serves the app's one request
handler, so tasks, owners, turn locks and redelivery are shared with JSON-RPC and HTTP+JSON; see
:mod:`pocketmesh.a2a.transports.grpc_servicer` for the checks each call passes. Needs
``grpcio`` (``pip install 'pocketmesh[grpc]'``), imported only when the server starts.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from ..auth import Authenticator

logger = logging.getLogger("pocketmesh.a2a")

GRPC_MISSING = (
    "gRPC needs the grpcio package, which is not installed; install it with "
    "pip install 'pocketmesh[grpc]' (or leave out grpc_port / --grpc-port)."
)


def grpc_available() -> bool:
    """Whether ``grpcio`` is installed (gRPC can be served)."""
    return importlib.util.find_spec("grpc") is not None


def require_grpc() -> None:
    """Raise ``ImportError`` saying how to install gRPC support, if it is missing."""
    if not grpc_available():
        raise ImportError(GRPC_MISSING)


class GrpcServer:
    """A ``grpc.aio`` server for one request handler on ``host:port``; :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        request_handler: Any,
        *,
        host: str = "127.0.0.1",
        port: int,
        auth: Authenticator | None = None,
        max_message_size: int = 4 * 1024 * 1024,
    ) -> None:
        require_grpc()
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"grpc_port must be a TCP port number (1-65535), got {port!r:.40}; e.g. grpc_port=50051.")
        self.request_handler = request_handler
        self.host = host
        self.port = port
        self.auth = auth
        self.max_message_size = max_message_size
        self._server: Any = None

    @property
    def address(self) -> str:
        """``host:port`` as a gRPC target (IPv6 hosts in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def serving(self) -> bool:
        """Whether the server has been started and not stopped."""
        return self._server is not None

    async def start(self) -> None:
        """Bind and start serving; raises ``OSError`` naming the address if it cannot be bound."""
        if self._server is not None:
            return
        import grpc.aio
        from a2a.types import a2a_pb2_grpc

        from .grpc_servicer import PocketMeshGrpcHandler

        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", self.max_message_size), ("grpc.so_reuseport", 0)]
        )
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(PocketMeshGrpcHandler(self.request_handler, auth=self.auth), server)
        cause: BaseException | None = None
        try:
            bound = server.add_insecure_port(self.address)
        except RuntimeError as error:
            bound, cause = 0, error
        if not bound:
            raise OSError(
                f"gRPC could not listen on {self.address} (is the port in use?); pick a free port for grpc_port "
                f"(pocketmesh serve --grpc-port N)."
            ) from cause
        await server.start()
        self._server = server
        logger.info("A2A gRPC listening on %s", self.address)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls; calls under way get ``grace`` seconds to finish."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
