"""pocketmesh_testing: test pocketmesh flows without a live model.

Installing ``pocketmesh[testing]`` brings the harness and registers the pytest plugin
(``pocketmesh_testing.plugin``); the classes here also work outside pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pocketmesh_testing.errors import (
    BlockedLookupError,
    CassetteMissError,
    NetworkBlockedError,
    PersistenceConformanceError,
    PocketMeshTestingError,
    ReplyMismatchError,
    SimulationAnswerError,
    SimulationError,
    UnscriptedCallError,
    UnusedRepliesError,
)
from pocketmesh_testing.doubles.fake_llm import FakeCall, FakeLLM
from pocketmesh_testing.doubles.llm_replies import ErrorReply, RawReply, StreamReply, TextReply, ToolCallReply
from pocketmesh_testing.doubles.conformance import PersistenceConformance, check_persistence_conformance

__all__ = [
    "Agent",
    "BlockedLookupError",
    "CassetteMissError",
    "Conversation",
    "ErrorReply",
    "FakeCall",
    "FakeLLM",
    "NetworkBlockedError",
    "PersistenceConformance",
    "PersistenceConformanceError",
    "PocketMeshTestingError",
    "RawReply",
    "Reply",
    "ReplyMismatchError",
    "SimulationAnswerError",
    "SimulationError",
    "StreamReply",
    "TextReply",
    "ToolCallReply",
    "UnscriptedCallError",
    "UnusedRepliesError",
    "a2a_agent",
    "check_persistence_conformance",
    "remote_agent",
]

_LAZY = {"Agent", "Conversation", "Reply", "a2a_agent", "remote_agent"}
"""Names from ``pocketmesh_testing.conversations.agents``, imported on first use: they pull in the A2A stack,
which a test run that never talks to an agent should not pay for at start-up."""

if TYPE_CHECKING:
    from pocketmesh_testing.conversations.agents import Agent, Conversation, Reply, a2a_agent, remote_agent


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from pocketmesh_testing.conversations import agents

        return getattr(agents, name)
    raise AttributeError(f"module 'pocketmesh_testing' has no attribute {name!r}")
