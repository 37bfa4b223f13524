"""pocketmesh_testing: test pocketmesh flows without a live model.

Installing pocketmesh registers the pytest plugin (``pocketmesh_testing.plugin``); the classes
here also work outside pytest.
"""

from __future__ import annotations

from pocketmesh_testing.errors import (
    CassetteMissError,
    NetworkBlockedError,
    PersistenceConformanceError,
    PocketMeshTestingError,
    UnscriptedCallError,
    UnusedRepliesError,
)
from pocketmesh_testing.fake_llm import FakeCall, FakeLLM
from pocketmesh_testing.llm_replies import ErrorReply, RawReply, StreamReply, TextReply, ToolCallReply
from pocketmesh_testing.persistence import PersistenceConformance, check_persistence_conformance

__all__ = [
    "CassetteMissError",
    "ErrorReply",
    "FakeCall",
    "FakeLLM",
    "NetworkBlockedError",
    "PersistenceConformance",
    "PersistenceConformanceError",
    "PocketMeshTestingError",
    "RawReply",
    "StreamReply",
    "TextReply",
    "ToolCallReply",
    "UnscriptedCallError",
    "UnusedRepliesError",
    "check_persistence_conformance",
]
