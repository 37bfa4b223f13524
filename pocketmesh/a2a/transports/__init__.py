"""The transports beside JSON-RPC: HTTP+JSON routes and a gRPC server, on one request handler.

:func:`rest_routes` mounts the SDK's REST routes behind the same checks as JSON-RPC;
:class:`GrpcServer` serves the SDK's gRPC servicer (``pip install 'pocketmesh[grpc]'``), started
and stopped with the app's lifespan. :func:`interfaces_for` declares them in the agent card.
"""

from .cards import interfaces_for
from .grpc_server import GRPC_MISSING, GrpcServer, grpc_available, require_grpc
from .rest import RestGuard, rest_routes

__all__ = ["GRPC_MISSING", "GrpcServer", "RestGuard", "grpc_available", "interfaces_for", "require_grpc", "rest_routes"]
