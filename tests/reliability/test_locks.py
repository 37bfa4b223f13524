"""Turn locks: re-entrant within a turn, exclusive across processes on one SQLite file."""

from __future__ import annotations

import asyncio
import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

from pocketmesh import InMemoryPersistence, SQLitePersistence
from pocketmesh.a2a.locks import BoundedPersistence, FileRunLocks, TurnLocks
from pocketmesh.errors import RunLockTimeoutError

HOLDER = """
import fcntl, os, sys
from pocketmesh.a2a.locks import FileRunLocks
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, FileRunLocks.slot("task-1"), os.SEEK_SET)
print("held", flush=True)
sys.stdin.readline()  # hold until told to let go
fcntl.lockf(fd, fcntl.LOCK_UN, 1, FileRunLocks.slot("task-1"), os.SEEK_SET)
print("released", flush=True)
sys.stdin.readline()
"""


async def test_a_sqlite_turn_waits_for_another_process_holding_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLitePersistence(tmp_path / "db.sqlite")
    turns = TurnLocks(store)
    events: list[str] = []
    refused = asyncio.Event()
    loop = asyncio.get_running_loop()
    real_lockf = fcntl.lockf

    def watched_lockf(fd: int, cmd: int, *args: int) -> None:
        # Observes this process's attempts on the lock file; the locking itself is the kernel's.
        try:
            real_lockf(fd, cmd, *args)
        except OSError:
            if "refused" not in events:
                events.append("refused")
                loop.call_soon_threadsafe(refused.set)
            raise

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, f"{store.path}.locks"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = FileRunLocks(f"{store.path}.locks")
        with pytest.raises(RunLockTimeoutError, match="task-1"):
            async with lock.run_lock("task-1", timeout=0.1):
                pass
        async with lock.run_lock("task-2", timeout=0.1):
            pass  # another task is not held up

        monkeypatch.setattr(fcntl, "lockf", watched_lockf)

        async def turn() -> None:
            async with turns.hold("task-1"):
                events.append("acquired")

        waiter = asyncio.create_task(turn())
        first, _ = await asyncio.wait({waiter, asyncio.create_task(refused.wait())}, return_when=asyncio.FIRST_COMPLETED)
        assert waiter not in first, f"the turn did not wait for the other process: {events}"
        assert not waiter.done()
        events.append("release asked")
        assert holder.stdin is not None
        holder.stdin.write("let go\n")
        holder.stdin.flush()
        await asyncio.wait_for(waiter, 30)
        assert events == ["refused", "release asked", "acquired"]
        assert holder.stdout.readline().strip() == "released"
    finally:
        holder.kill()
        holder.communicate()


POCKETMESH_HOLDER = """
import asyncio, sys
from pocketmesh.a2a.locks import FileRunLocks

async def main():
    async with FileRunLocks(sys.argv[1]).run_lock("task-1"):
        print("held", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print("released", flush=True)

asyncio.run(main())
"""


async def test_two_processes_taking_the_sqlite_turn_lock_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite.locks"
    holder = subprocess.Popen(
        [sys.executable, "-c", POCKETMESH_HOLDER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = FileRunLocks(path)
        # The other process holds the turn through the same code: this one must not get it too.
        with pytest.raises(RunLockTimeoutError, match="task-1"):
            async with lock.run_lock("task-1", timeout=0.1):
                pass
        assert holder.stdin is not None
        holder.stdin.write("let go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        async with lock.run_lock("task-1", timeout=10):
            pass
    finally:
        holder.kill()
        holder.communicate()


async def test_turns_are_reentrant_within_a_turn_and_exclusive_between_turns() -> None:
    turns = TurnLocks(InMemoryPersistence())
    order: list[str] = []

    async def turn(name: str) -> None:
        async with turns.hold("t"):
            async with turns.hold("t"):  # the executor inside the handler's turn
                order.append(f"{name} in")
                await asyncio.sleep(0.01)
                order.append(f"{name} out")

    await asyncio.wait_for(asyncio.gather(turn("a"), turn("b")), 5)
    assert order == ["a in", "a out", "b in", "b out"]
    assert len(turns) == 0


async def test_limits_are_checked_and_bound_calls() -> None:
    with pytest.raises(ValueError, match="max_concurrent_turns"):
        TurnLocks(InMemoryPersistence(), max_concurrent_turns=-1)
    store = BoundedPersistence(InMemoryPersistence(), 1)
    await asyncio.gather(*(store.save_run(f"r{n}", {"n": n}, {}) for n in range(5)))
    assert sorted(await store.list_runs()) == [f"r{n}" for n in range(5)]


async def test_a_task_spawned_in_a_turn_takes_the_turn_itself_once_that_turn_is_over() -> None:
    """The SDK runs the executor in a copy of the request's context: once the request's turn is
    let go, that copy must not count as holding it."""
    turns = TurnLocks(InMemoryPersistence())
    order: list[str] = []
    go = asyncio.Event()

    async def spawned() -> None:
        await go.wait()
        async with turns.hold("t"):
            order.append("spawned in")

    async with turns.hold("t") as first:
        async with turns.hold("t") as inner:
            assert inner is first  # re-entrant while the turn is held
        late = asyncio.create_task(spawned())  # inherits the context that holds "t"
    assert not first.active
    async with turns.hold("t"):
        order.append("next in")
        go.set()
        for _ in range(20):  # every chance to run: it must wait for this turn instead
            await asyncio.sleep(0)
        order.append("next out")
    await asyncio.wait_for(late, 5)
    assert order == ["next in", "next out", "spawned in"]


async def test_a_lost_turn_stops_the_work_guarded_by_it() -> None:
    from pocketmesh.a2a.locks import TurnLostError

    turns = TurnLocks(InMemoryPersistence())
    working = asyncio.Event()

    async def work() -> None:
        async with turns.hold("t") as turn, turn.guard():
            working.set()
            await asyncio.Event().wait()  # forever, unless stopped

    async with turns.hold("t") as turn:
        task = asyncio.create_task(work())
        await asyncio.wait_for(working.wait(), 5)
        turn.lose("the lease ran out")
        with pytest.raises(TurnLostError, match="lost the task's lock \\(the lease ran out\\).*send the message again"):
            await asyncio.wait_for(task, 5)


async def test_a_turn_lasts_until_the_work_started_inside_it_is_done() -> None:
    """The SDK's producer runs the executor on its own: the turn, and the locks behind it, are
    let go only once the executor is done, even if the request's side ended first."""
    turns = TurnLocks(InMemoryPersistence())
    inside, leave = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def executor() -> None:
        async with turns.hold("t"):  # joins the turn it was started in
            inside.set()
            await leave.wait()
            order.append("executor out")

    async def request() -> None:
        async with turns.hold("t"):
            worker = asyncio.create_task(executor())
            await inside.wait()
        order.append("request's turn over")
        await worker

    async def next_turn() -> None:
        async with turns.hold("t"):
            order.append("next in")

    first = asyncio.create_task(request())
    await asyncio.wait_for(inside.wait(), 5)
    second = asyncio.create_task(next_turn())
    for _ in range(20):  # every chance to go ahead: both must wait for the executor
        await asyncio.sleep(0)
    leave.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert order == ["executor out", "request's turn over", "next in"]
