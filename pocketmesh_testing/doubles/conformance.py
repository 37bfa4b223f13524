"""A conformance kit for pocketmesh persistence backends.

Any backend with the five async methods (``save_run``, ``load_run``, ``save_step``,
``list_runs``, ``delete_run``) can prove it behaves as the runtime expects, either in one call
(``await check_persistence_conformance(factory)``) or as a pytest class to subclass
(``PersistenceConformance``, which needs a ``backend`` fixture returning a fresh, empty store).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Union

from pocketmesh_testing.errors import PersistenceConformanceError

__all__ = ["CHECKS", "BackendFactory", "PersistenceConformance", "check_persistence_conformance"]


class Backend(Protocol):
    """The five methods the runtime uses."""

    async def save_run(self, run_id: str, state: Any, params: Any) -> None: ...
    async def load_run(self, run_id: str) -> Any: ...
    async def save_step(self, run_id: str, step_id: Any, node_name: str, result: Any) -> None: ...
    async def list_runs(self) -> list[str]: ...
    async def delete_run(self, run_id: str) -> None: ...


BackendFactory = Callable[[], Union[Any, Awaitable[Any]]]
"""Returns a fresh, empty backend (sync or async)."""

_RICH_STATE: dict[str, Any] = {
    "text": "héllo ✓ \"quoted\" \n newline",
    "int": 2**53, "negative": -7, "float": 0.1, "zero": 0.0,
    "bools": [True, False], "none": None, "empty": {"list": [], "dict": {}, "str": ""},
    "nested": {"a": [{"b": [1, 2, {"c": None}]}]},
    "order": {"z": 1, "a": 2, "m": 3},
}


async def _call(fn: Any, *args: Any) -> Any:
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result


def _expect(condition: bool, check: str, message: str) -> None:
    __tracebackhide__ = True  # the failing check, not this helper, is what readers need
    if not condition:
        raise PersistenceConformanceError(f"{check}: {message}")


async def check_round_trip(backend: Any) -> None:
    """A saved state loads back equal."""
    state = {"input": "hi", "count": 1}
    await _call(backend.save_run, "run-a", state, {"p": 1})
    loaded = await _call(backend.load_run, "run-a")
    _expect(loaded == state, "round trip", f"saved {state!r}, load_run returned {loaded!r}")


async def check_overwrite(backend: Any) -> None:
    """Saving a run again replaces its state."""
    await _call(backend.save_run, "run-a", {"v": 1}, {})
    await _call(backend.save_run, "run-a", {"v": 2}, {})
    loaded = await _call(backend.load_run, "run-a")
    _expect(loaded == {"v": 2}, "overwrite", f"saved {{'v': 1}} then {{'v': 2}}, loaded {loaded!r}")
    runs = await _call(backend.list_runs)
    _expect(list(runs).count("run-a") == 1, "overwrite", f"list_runs() lists the run twice: {runs!r}")


async def check_missing_run(backend: Any) -> None:
    """Loading an unknown run returns None (no exception)."""
    loaded = await _call(backend.load_run, "no-such-run")
    _expect(loaded is None, "missing run", f"load_run('no-such-run') returned {loaded!r}, expected None")


async def check_list_runs(backend: Any) -> None:
    """list_runs returns exactly the saved run ids, as strings."""
    empty = await _call(backend.list_runs)
    _expect(list(empty) == [], "list_runs", f"a fresh backend lists {empty!r}; the factory must give an empty store")
    for run_id in ("run-1", "run-2", "run-3"):
        await _call(backend.save_run, run_id, {"id": run_id}, {})
    runs = await _call(backend.list_runs)
    _expect(isinstance(runs, list), "list_runs", f"returned a {type(runs).__name__}, expected a list")
    _expect(sorted(runs) == ["run-1", "run-2", "run-3"], "list_runs",
            f"after saving run-1, run-2, run-3 it returned {runs!r}")


async def check_delete_run(backend: Any) -> None:
    """A deleted run is gone from load_run and list_runs, and other runs stay."""
    await _call(backend.save_run, "keep", {"k": 1}, {})
    await _call(backend.save_run, "drop", {"d": 1}, {})
    await _call(backend.save_step, "drop", "1", "Node", {"action": "default"})
    await _call(backend.delete_run, "drop")
    loaded = await _call(backend.load_run, "drop")
    _expect(loaded is None, "delete_run", f"load_run after delete_run returned {loaded!r}")
    runs = await _call(backend.list_runs)
    _expect(list(runs) == ["keep"], "delete_run", f"list_runs after deleting 'drop' returned {runs!r}")


async def check_isolation(backend: Any) -> None:
    """Runs never see each other's state, steps or deletion."""
    await _call(backend.save_run, "run-a", {"owner": "a", "items": [1]}, {})
    await _call(backend.save_run, "run-b", {"owner": "b"}, {})
    await _call(backend.save_step, "run-b", "1", "Node", {"owner": "step"})
    loaded_a = await _call(backend.load_run, "run-a")
    loaded_b = await _call(backend.load_run, "run-b")
    _expect(loaded_a == {"owner": "a", "items": [1]}, "isolation", f"run-a loaded as {loaded_a!r}")
    _expect(loaded_b == {"owner": "b"}, "isolation", f"run-b loaded as {loaded_b!r}")
    await _call(backend.delete_run, "run-b")
    again = await _call(backend.load_run, "run-a")
    _expect(again == {"owner": "a", "items": [1]}, "isolation",
            f"deleting run-b changed run-a, which now loads as {again!r}")


async def check_json_fidelity(backend: Any) -> None:
    """Every JSON value (unicode, big ints, floats, nulls, empty containers) survives exactly."""
    state = copy.deepcopy(_RICH_STATE)
    await _call(backend.save_run, "rich", state, {"nested": {"param": [1, "two"]}})
    loaded = await _call(backend.load_run, "rich")
    _expect(loaded == _RICH_STATE, "JSON fidelity", f"saved {_RICH_STATE!r}, loaded {loaded!r}")
    kinds = {k: type(v).__name__ for k, v in (loaded or {}).items()}
    expected = {k: type(v).__name__ for k, v in _RICH_STATE.items()}
    _expect(kinds == expected, "JSON fidelity", f"value types changed: {kinds!r} != {expected!r}")


async def check_steps_keep_state(backend: Any) -> None:
    """save_step records history without replacing the run's state."""
    await _call(backend.save_run, "run-s", {"phase": "start"}, {})
    for step in range(3):
        await _call(backend.save_step, "run-s", str(step), f"Node{step}", {"action": "default", "n": step})
    loaded = await _call(backend.load_run, "run-s")
    _expect(loaded == {"phase": "start"}, "steps keep state",
            f"after three save_step calls load_run returned {loaded!r}, expected the saved state")
    runs = await _call(backend.list_runs)
    _expect(list(runs) == ["run-s"], "steps keep state", f"save_step changed list_runs: {runs!r}")


def _two_event_loops(factory: BackendFactory) -> None:
    async def make() -> Any:
        return await _call(factory)

    async def save(backend: Any) -> None:
        await _call(backend.save_run, "loops", {"loop": 1}, {})

    async def load(backend: Any) -> Any:
        return await _call(backend.load_run, "loops")

    backend = asyncio.run(make())
    asyncio.run(save(backend))
    loaded = asyncio.run(load(backend))
    _expect(loaded == {"loop": 1}, "two event loops",
            f"a run saved under one asyncio.run loaded as {loaded!r} under the next")


async def check_two_event_loops(factory: BackendFactory) -> None:
    """One backend works across two ``asyncio.run`` calls in turn (not bound to a loop)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            _two_event_loops(factory)
        except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread
            errors.append(error)

    # asyncio.run cannot nest in a running loop, so the two loops live in a worker thread.
    worker = threading.Thread(target=target, name="pocketmesh-conformance")
    worker.start()
    await asyncio.get_running_loop().run_in_executor(None, worker.join)
    if errors:
        error = errors[0]
        if isinstance(error, PersistenceConformanceError):
            raise error
        raise PersistenceConformanceError(
            f"two event loops: the backend failed when used from a second asyncio.run: {error!r}. "
            f"Do not keep loop-bound objects (locks, connections of an async driver) across loops; "
            f"create them lazily per loop or use thread-safe synchronous ones."
        ) from error


CHECKS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "round_trip": check_round_trip,
    "overwrite": check_overwrite,
    "missing_run": check_missing_run,
    "list_runs": check_list_runs,
    "delete_run": check_delete_run,
    "isolation": check_isolation,
    "json_fidelity": check_json_fidelity,
    "steps_keep_state": check_steps_keep_state,
}
"""The checks that take one fresh backend, by name (``two_event_loops`` takes the factory)."""


async def check_persistence_conformance(factory: BackendFactory) -> None:
    """Run every check on fresh backends from ``factory``; raise one error listing all failures."""
    failures: list[str] = []
    for name, check in CHECKS.items():
        backend = await _call(factory)
        try:
            await check(backend)
        except PersistenceConformanceError as error:
            failures.append(str(error))
        except Exception as error:  # noqa: BLE001 - a crash is a conformance failure too
            failures.append(f"{name}: raised {error!r}")
    try:
        await check_two_event_loops(factory)
    except PersistenceConformanceError as error:
        failures.append(str(error))
    if failures:
        listed = "\n  - ".join(failures)
        raise PersistenceConformanceError(
            f"{len(failures)} persistence conformance check(s) failed for backends from "
            f"{getattr(factory, '__qualname__', factory)!r}:\n  - {listed}"
        )


class PersistenceConformance:
    """Subclass in a test module and define a ``backend`` fixture returning a fresh store.

    Optionally override the ``backend_factory`` fixture (used by the two-event-loops check)
    when building a backend needs more than calling ``type(backend)()``.
    """

    async def test_round_trip(self, backend: Any) -> None:
        await check_round_trip(backend)

    async def test_overwrite(self, backend: Any) -> None:
        await check_overwrite(backend)

    async def test_missing_run(self, backend: Any) -> None:
        await check_missing_run(backend)

    async def test_list_runs(self, backend: Any) -> None:
        await check_list_runs(backend)

    async def test_delete_run(self, backend: Any) -> None:
        await check_delete_run(backend)

    async def test_isolation(self, backend: Any) -> None:
        await check_isolation(backend)

    async def test_json_fidelity(self, backend: Any) -> None:
        await check_json_fidelity(backend)

    async def test_steps_keep_state(self, backend: Any) -> None:
        await check_steps_keep_state(backend)

    def test_two_event_loops(self, backend: Any) -> None:
        # Synchronous on purpose: asyncio.run needs no running loop around it.
        def factory() -> Any:
            return backend

        _two_event_loops(factory)
