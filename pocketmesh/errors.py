"""Errors raised by pocketmesh.

The tree::

    PocketMeshError
    ├── UnknownActionError      a node returned an action nothing is wired to
    ├── StepLimitError          a run executed more than ``max_steps`` nodes
    ├── PersistenceError        state could not be saved or loaded
    │   ├── StateNotSerializableError   shared state holds a non-JSON value
    │   ├── RunLockTimeoutError         another process held a run's lock too long
    │   └── RunLockLostError            a write under a run lock its holder no longer has
    ├── RunFinishedError        a completed / failed / canceled run was run again
    ├── RunNotFoundError        a run id that the persistence does not know
    ├── WiringError (ValueError)        an action wired twice, or an empty action
    ├── ActionTypeError (TypeError)     an action that is not a string
    ├── BatchItemsError (TypeError)     a batch node's or BatchFlow's prepare returned no iterable
    ├── FlowNotExecutableError (TypeError)  ``Flow.execute`` was called directly
    └── SignatureError (TypeError)      a lifecycle method that cannot take the runtime's arguments

Misuse errors subclass ``TypeError`` / ``ValueError`` too, so ordinary ``except`` clauses
catch them. Every message names the thing at fault, shows the value and says how to fix it.
"""

from __future__ import annotations

from typing import Any, Sequence


class PocketMeshError(Exception):
    """Base class of every error pocketmesh raises on purpose."""


class UnknownActionError(PocketMeshError):
    """A node returned an action that has no successor, while the node has others."""

    def __init__(self, node: str, action: str, available: Sequence[str]) -> None:
        self.node = node
        self.action = action
        self.available = list(available)
        choices = ", ".join(repr(a) for a in self.available)
        super().__init__(
            f"node {node!r} returned action {action!r}, but only these actions are wired: "
            f"{choices}. Wire it with node.connect_action({action!r}, next_node) "
            f"or return one of the wired actions."
        )


class StepLimitError(PocketMeshError):
    """A run executed more nodes than the flow's ``max_steps``; names the repeating cycle."""

    def __init__(self, max_steps: int, cycle: Sequence[str]) -> None:
        self.max_steps = max_steps
        self.cycle = list(cycle)
        shown = " -> ".join(self.cycle)
        super().__init__(
            f"run exceeded max_steps={max_steps}; it keeps repeating the cycle {shown}. "
            f"Give the loop an exit (an action wired out of the cycle), or raise "
            f"Flow(..., max_steps=N) if the run really needs more steps."
        )


class PersistenceError(PocketMeshError):
    """State could not be saved to, or loaded from, a persistence backend."""


class StateNotSerializableError(PersistenceError, TypeError):
    """Shared state holds a value JSON cannot represent."""

    def __init__(self, path: str, value: Any, reason: str | None = None) -> None:
        self.path = path
        self.value = value
        kind = type(value).__name__
        why = reason or f"a {kind} is not JSON-serializable"
        super().__init__(
            f"cannot persist {path} = {value!r:.80}: {why}. Persisted shared state must hold "
            f"only dict (with str keys), list, str, int, float, bool and None; store a "
            f"plain representation instead (e.g. str(value) or value.isoformat())."
        )


class RunLockTimeoutError(PersistenceError, TimeoutError):
    """Waiting for another process to release a run's lock took longer than allowed."""


class RunLockLostError(PersistenceError):
    """A write made under a run lock whose lease has run out (another process may hold it now);
    the write was refused, so nothing the lost holder does can overwrite the new holder's work."""

    def __init__(self, run_id: str, detail: str) -> None:
        self.run_id = run_id
        self.detail = detail
        super().__init__(
            f"refused a write to run {run_id!r}: this process no longer holds the run's lock ({detail}). "
            f"Another process may be running it now; nothing was written. Send the request again to "
            f"continue from the state that process saved."
        )


class RunFinishedError(PocketMeshError):
    """A run that has completed, failed or been canceled cannot run again."""

    def __init__(self, run_id: str, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(
            f"run {run_id!r} has finished (status {status!r}) and cannot run again; "
            f"start a new run with another run_id, or delete this one with "
            f"persistence.delete_run({run_id!r})."
        )


class RunNotFoundError(PocketMeshError, LookupError):
    """A run id the persistence backend does not know."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"no run {run_id!r} in this persistence; check the run_id, or start it with "
            f"flow.run(..., run_id={run_id!r}, persistence=...)."
        )


class WiringError(PocketMeshError, ValueError):
    """A node was wired wrongly: an empty action, or one action wired twice."""


class ActionTypeError(PocketMeshError, TypeError):
    """An action that is not a non-empty string."""


class BatchItemsError(PocketMeshError, TypeError):
    """A batch node's ``prepare`` returned something that is not an iterable of items (or a
    BatchFlow's something that is not an iterable of param dicts)."""


class FlowNotExecutableError(PocketMeshError, TypeError):
    """``execute`` was called on a flow: a flow runs its nodes, it is not executed itself."""

    def __init__(self, flow: str) -> None:
        self.flow = flow
        super().__init__(
            f"flow {flow!r} is not executed directly: it runs its nodes. Run it with "
            f"`await flow.run(shared, params)` (a RunResult) or "
            f"`await flow.run_lifecycle(shared, params)` (the final action), or wire it into "
            f"another flow as a node (a sub-flow)."
        )


class SignatureError(PocketMeshError, TypeError):
    """A node class's lifecycle method cannot take the arguments the runtime passes it."""
