"""pocketmesh: agent flows with durable runs, served over A2A, tested without a live model."""

from .batch import BatchFlow
from .errors import (
    FlowNotExecutableError,
    PersistenceError,
    PocketMeshError,
    RunFinishedError,
    RunLockLostError,
    RunLockTimeoutError,
    RunNotFoundError,
    StateNotSerializableError,
    StepLimitError,
    UnknownActionError,
)
from .flow import Flow
from .log import configure_from_env as _configure_logging
from .node import ActionKey, BaseNode
from .observers import observe
from .persistence import (
    InMemoryPersistence,
    Persistence,
    PostgresPersistence,
    RedisPersistence,
    SQLitePersistence,
)
from .results import RunResult, StatusUpdate, StepResult, TraceStep
from .runs import RunRecord, cancel_run, load_run_record
from .stepper import FlowStepper
from .types import Action, Params, SharedState

_configure_logging()

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ActionKey",
    "BaseNode",
    "BatchFlow",
    "Flow",
    "FlowNotExecutableError",
    "FlowStepper",
    "InMemoryPersistence",
    "Params",
    "Persistence",
    "PersistenceError",
    "PocketMeshError",
    "PostgresPersistence",
    "RedisPersistence",
    "RunFinishedError",
    "RunLockLostError",
    "RunLockTimeoutError",
    "RunNotFoundError",
    "RunRecord",
    "RunResult",
    "SQLitePersistence",
    "SharedState",
    "StateNotSerializableError",
    "StatusUpdate",
    "StepLimitError",
    "StepResult",
    "TraceStep",
    "UnknownActionError",
    "cancel_run",
    "load_run_record",
    "observe",
]
