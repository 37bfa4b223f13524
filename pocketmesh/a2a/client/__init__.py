"""The A2A client: :func:`create_a2a_client` and what it returns, over the transport the agent's card offers.

``agent_client`` holds :class:`A2AClient`; ``bindings`` chooses the transport; ``views`` holds
the task, event and page shapes it answers with.
"""

from .agent_client import A2AClient, create_a2a_client
from .views import StreamEvent, TaskPage, TaskView

__all__ = ["A2AClient", "StreamEvent", "TaskPage", "TaskView", "create_a2a_client"]
