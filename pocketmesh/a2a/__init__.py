"""PocketMesh flows as A2A agents, on the official a2a-sdk.

Serve with :func:`create_a2a_app` (or mount with :func:`a2a_server_handler`) over JSON-RPC,
HTTP+JSON and gRPC, describe the agent with :func:`generate_agent_card`, require credentials
with :class:`BearerAuth` or :class:`ApiKeyAuth` (tasks are then scoped to their owner), decide
where push notifications may go with :class:`PushPolicy`, talk to agents with
:func:`create_a2a_client`, and write nodes that read the incoming message and set the reply
with :class:`A2ABaseNode`.
"""

from .app import a2a_server_handler, create_a2a_app
from .auth import ApiKeyAuth, Authenticator, BearerAuth
from .card import generate_agent_card
from .client import A2AClient, StreamEvent, TaskPage, TaskView, create_a2a_client
from .executor import PocketMeshAgentExecutor
from .node import A2ABaseNode
from .parts import (
    create_data_part,
    create_file_part,
    create_text_part,
    is_data_part,
    is_file_part,
    is_text_part,
)
from .push import PushPolicy, PushTargetRefused, RetryPolicy
from .task_store import PocketMeshTaskStore

__all__ = [
    "A2ABaseNode",
    "A2AClient",
    "ApiKeyAuth",
    "Authenticator",
    "BearerAuth",
    "PocketMeshAgentExecutor",
    "PocketMeshTaskStore",
    "PushPolicy",
    "PushTargetRefused",
    "RetryPolicy",
    "StreamEvent",
    "TaskPage",
    "TaskView",
    "a2a_server_handler",
    "create_a2a_app",
    "create_a2a_client",
    "create_data_part",
    "create_file_part",
    "create_text_part",
    "generate_agent_card",
    "is_data_part",
    "is_file_part",
    "is_text_part",
]
