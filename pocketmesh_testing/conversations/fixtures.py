"""The conversations room's fixtures: A2A agents and shared-state snapshots; ``plugin.py``
registers this module when the harness is installed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

if TYPE_CHECKING:  # the A2A stack is imported when a test first asks for an agent
    from pocketmesh import BaseNode, Persistence
    from pocketmesh_testing.conversations.agents import InProcessAgent, RemoteAgent

__all__ = ["a2a_agent", "remote_agent", "shared_snapshot", "shared_snapshot_internal"]

AgentFactory = Callable[..., "InProcessAgent"]
RemoteFactory = Callable[..., "RemoteAgent"]


@pytest_asyncio.fixture
async def a2a_agent() -> AsyncIterator[AgentFactory]:
    """A factory: ``agent = a2a_agent(flows, agent_card=None, persistence=None, transport=None,
    expose_errors=False)``, served in-process, closed after the test."""
    made: list[InProcessAgent] = []

    from pocketmesh_testing.conversations.agents import a2a_agent as serve

    def make(
        flows: Mapping[str, BaseNode],
        agent_card: Any = None,
        persistence: Persistence | None = None,
        transport: str | None = None,
        *,
        expose_errors: bool = False,
    ) -> InProcessAgent:
        agent = serve(flows, agent_card, persistence, transport, expose_errors=expose_errors)
        made.append(agent)
        return agent

    yield make
    for agent in reversed(made):
        await agent.aclose()


@pytest_asyncio.fixture
async def remote_agent() -> AsyncIterator[RemoteFactory]:
    """A factory: ``agent = remote_agent(url, persistence=None, transport=None)`` for a live agent, closed
    after the test."""
    made: list[RemoteAgent] = []

    from pocketmesh_testing.conversations.agents import remote_agent as connect

    def make(url: str, persistence: Persistence | None = None, timeout: float = 60.0, transport: str | None = None) -> RemoteAgent:
        agent = connect(url, persistence, timeout, transport)
        made.append(agent)
        return agent

    yield make
    for agent in reversed(made):
        await agent.aclose()


@pytest.fixture
def shared_snapshot(snapshot: Any) -> Any:
    """Syrupy snapshot of normalised shared state or traces: ``assert reply.shared == shared_snapshot``."""
    from pocketmesh_testing.conversations.snapshots import SharedStateSnapshotExtension

    return snapshot.use_extension(SharedStateSnapshotExtension)


@pytest.fixture
def shared_snapshot_internal(snapshot: Any) -> Any:
    """Like ``shared_snapshot`` but keeping the ``__a2a_*`` keys (ids and timestamps still normalised)."""
    from pocketmesh_testing.conversations.snapshots import InternalKeysSnapshotExtension

    return snapshot.use_extension(InternalKeysSnapshotExtension)
