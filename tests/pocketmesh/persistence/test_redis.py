"""Redis specifics: conformance, expiry of finished runs, the per-run lock across processes."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, PersistenceError, RunLockLostError, cancel_run
from pocketmesh_testing.doubles.conformance import PersistenceConformance
from tests.pocketmesh.persistence.conftest import drop_backend

redis = pytest.importorskip("redis", reason="Redis tests need redis-py: pip install 'pocketmesh[redis]'")

from pocketmesh.persistence.redis import RedisPersistence, redact  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
URL = os.environ.get("POCKETMESH_REDIS_URL")
needs_server = pytest.mark.skipif(
    not URL,
    reason="Redis tests need a server: set POCKETMESH_REDIS_URL, or run "
    'eval "$(.ci/services.sh)" to start one on loopback',
)


def fresh(**options: Any) -> RedisPersistence:
    """A store under its own key prefix."""
    return RedisPersistence(prefix=f"pmtest:{uuid.uuid4().hex[:12]}:", **options)


@pytest.fixture
def store() -> Iterator[RedisPersistence]:
    """A store under its own prefix, its keys deleted afterwards."""
    made = fresh(finished_ttl=60)
    yield made
    drop_backend(made)


@pytest.fixture
def admin() -> Iterator[Any]:
    """A plain synchronous client, to look at keys and TTLs directly."""
    with redis.Redis.from_url(URL, decode_responses=True) as client:
        yield client


@needs_server
class TestConformance(PersistenceConformance):
    @pytest.fixture(params=[None, 60])
    def backend(self, request: pytest.FixtureRequest) -> Iterator[RedisPersistence]:
        """A fresh store, without and with a TTL for finished runs."""
        made = fresh(finished_ttl=request.param)
        yield made
        drop_backend(made)


# -- construction, no server needed -------------------------------------------------------------


def test_without_a_url_the_error_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POCKETMESH_REDIS_URL", raising=False)
    with pytest.raises(ValueError, match="set POCKETMESH_REDIS_URL"):
        RedisPersistence()


def test_the_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCKETMESH_REDIS_URL", "redis://:secret@cache.example:6379/2")
    store = RedisPersistence()
    assert store.url == "redis://:secret@cache.example:6379/2"
    assert "secret" not in repr(store) and "***" in repr(store)
    assert redact("rediss://me:p@ss@h:1/0") == "rediss://me:***@h:1/0"


@pytest.mark.parametrize("ttl", [0, -5, datetime.timedelta(0)])
def test_a_ttl_must_be_positive(ttl: Any) -> None:
    with pytest.raises(ValueError, match="finished_ttl must be a positive number of seconds"):
        RedisPersistence("redis://localhost", finished_ttl=ttl)


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"pip install 'pocketmesh\[redis\]'"):
        RedisPersistence("redis://localhost")


# -- against a server ---------------------------------------------------------------------------


@needs_server
async def test_an_unreachable_server_is_a_persistence_error() -> None:
    store = RedisPersistence("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(PersistenceError, match=r"Redis error on redis://:\*\*\*@127.0.0.1:1") as info:
        await store.list_runs()
    assert "hunter2" not in str(info.value)


def _keys(store: RedisPersistence, run_id: str) -> list[str]:
    return [store.run_key(run_id), store.steps_key(run_id), store.trace_key(run_id)]


@needs_server
async def test_finished_runs_expire_with_their_steps_and_trace(store: RedisPersistence, admin: Any) -> None:
    from tests.pocketmesh.persistence.test_durable_runs import conversation

    paused = await conversation().run({}, run_id="talk", persistence=store)
    assert paused.status == "input-required"
    assert [admin.pttl(key) for key in _keys(store, "talk")] == [-1, -1, -1]  # no expiry yet
    await conversation().run({}, run_id="other", persistence=store)
    turn2 = await conversation().run({**paused.shared, "input": "Ada"}, run_id="talk", persistence=store)
    done = await conversation().run({**turn2.shared, "input": "bye"}, run_id="talk", persistence=store)
    assert done.status == "completed"
    ttls = [admin.pttl(key) for key in _keys(store, "talk")]
    assert all(0 < ttl <= 60_000 for ttl in ttls), ttls
    assert admin.pttl(store.run_key("other")) == -1  # still paused: kept


@needs_server
@pytest.mark.parametrize("ending", ["completed", "failed", "canceled"])
async def test_every_way_of_finishing_sets_the_ttl(store: RedisPersistence, admin: Any, ending: str) -> None:
    class End(BaseNode):
        async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
            if ending == "failed":
                raise ValueError("nope")

    if ending == "canceled":
        from tests.pocketmesh.persistence.test_durable_runs import conversation

        await conversation().run({}, run_id="r", persistence=store)
        await cancel_run(store, "r")
    else:
        await Flow(End()).run({}, run_id="r", persistence=store)
    assert 0 < admin.pttl(store.run_key("r")) <= 60_000
    assert admin.pttl(store.steps_key("r")) != -1  # expiring, or absent when no step finished


@needs_server
async def test_save_run_with_a_finished_status_sets_the_ttl_and_a_later_save_clears_it(
    store: RedisPersistence, admin: Any
) -> None:
    await store.save_step("r", "1", "N", {"action": "default"})
    await store.save_run("r", {"status": "completed"}, {})
    assert 0 < admin.pttl(store.run_key("r")) <= 60_000
    assert 0 < admin.pttl(store.steps_key("r")) <= 60_000
    await store.save_run("r", {"status": "running"}, {})
    assert admin.pttl(store.run_key("r")) == -1


@needs_server
async def test_without_a_ttl_finished_runs_are_kept(admin: Any) -> None:
    store = fresh()
    try:
        await Flow(BaseNode()).run({}, run_id="r", persistence=store)
        assert admin.pttl(store.run_key("r")) == -1
    finally:
        drop_backend(store)


@needs_server
async def test_expired_runs_leave_the_index(store: RedisPersistence, admin: Any) -> None:
    for run_id in ("a", "b", "c"):
        await store.save_run(run_id, {"id": run_id}, {})
    admin.delete(store.run_key("b"))  # what expiry does, without waiting for it
    assert await store.list_runs() == ["a", "c"]
    assert admin.zrange(store.index_key, 0, -1) == ["a", "c"]


@needs_server
async def test_runs_are_listed_by_first_save(store: RedisPersistence) -> None:
    for run_id in ("z", "a", "m"):
        await store.save_run(run_id, {}, {})
    await store.save_run("z", {"again": True}, {})
    assert await store.list_runs() == ["z", "a", "m"]


@needs_server
async def test_replicas_share_runs_and_continue_each_others_turns(store: RedisPersistence) -> None:
    from tests.pocketmesh.persistence.test_durable_runs import conversation

    other = RedisPersistence(store.url, prefix=store.prefix)
    turn1 = await conversation().run({}, run_id="t", persistence=store)
    turn2 = await conversation().run({**turn1.shared, "input": "Ada"}, run_id="t", persistence=other)
    turn3 = await conversation().run({**turn2.shared, "input": "bye"}, run_id="t", persistence=store)
    assert turn3.shared["said"][-1] == "Goodbye"
    assert list(await other.load_steps("t")) == ["Ask-1", "Greet-2", "Chat-3"]
    await other.close()


# -- run_lock -----------------------------------------------------------------------------------


@needs_server
async def test_run_lock_serializes_holders_on_separate_clients(store: RedisPersistence) -> None:
    other = RedisPersistence(store.url, prefix=store.prefix)
    inside: list[str] = []
    overlaps: list[str] = []

    async def turn(who: RedisPersistence, name: str) -> None:
        async with who.run_lock("task-1"):
            if inside:
                overlaps.append(f"{name} entered while {inside} held the lock")
            inside.append(name)
            await asyncio.sleep(0.02)
            inside.remove(name)

    await asyncio.gather(*(turn(s, f"{i}") for i, s in enumerate([store, other] * 3)))
    assert overlaps == []
    async with store.run_lock("task-1"), other.run_lock("task-2", timeout=1):
        pass
    await other.close()


@needs_server
async def test_release_never_deletes_a_lock_someone_else_now_holds(store: RedisPersistence, admin: Any) -> None:
    async with store.run_lock("task-1"):
        admin.set(store.lock_key("task-1"), "another-holder")  # our lease lapsed, someone took it
    assert admin.get(store.lock_key("task-1")) == "another-holder"


@needs_server
async def test_the_lease_is_renewed_while_held(store: RedisPersistence, admin: Any) -> None:
    async with store.run_lock("task-1", lease=0.3):
        await asyncio.sleep(0.5)
        assert admin.pttl(store.lock_key("task-1")) > 0
        with pytest.raises(PersistenceError, match="lock on run 'task-1'"):
            async with store.run_lock("task-1", timeout=0.05):
                pass
    assert admin.exists(store.lock_key("task-1")) == 0


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pocketmesh.persistence.redis import RedisPersistence

    async def main():
        store = RedisPersistence(sys.argv[1], prefix=sys.argv[2])
        async with store.run_lock("task-1", lease=float(sys.argv[3])):
            print("locked", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print("released", flush=True)

    asyncio.run(main())
    """
)


def _holder(store: RedisPersistence, lease: float = 30.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store.url, store.prefix, str(lease)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@needs_server
async def test_run_lock_excludes_another_process_until_it_releases(store: RedisPersistence) -> None:
    proc = _holder(store)
    try:
        with pytest.raises(PersistenceError, match="timed out after 0.2s waiting for the lock on run 'task-1'"):
            async with store.run_lock("task-1", timeout=0.2):
                pass
        assert proc.communicate("go\n", timeout=10)[0].strip() == "released"
        async with store.run_lock("task-1", timeout=5):
            pass
    finally:
        proc.kill()
        proc.communicate()


@needs_server
async def test_a_dead_holders_lock_lapses_after_its_lease(store: RedisPersistence, admin: Any) -> None:
    proc = _holder(store, lease=0.5)
    proc.kill()
    proc.communicate()
    assert 0 < admin.pttl(store.lock_key("task-1")) <= 500
    async with store.run_lock("task-1", timeout=5):
        pass


# -- leases: fencing and loss -------------------------------------------------------------------


@needs_server
async def test_a_holder_whose_lease_was_taken_cannot_write(store: RedisPersistence, admin: Any) -> None:
    await store.save_run("task-1", {"turn": 1}, {})
    heard: list[str] = []
    async with store.run_lock("task-1") as lease:
        lease.cover("task-1-record")
        lease.on_lost(heard.append)
        await store.save_run("task-1", {"turn": 2}, {})  # held: written
        admin.set(store.lock_key("task-1"), "another-holder")  # the lease ran out; someone took it
        with pytest.raises(RunLockLostError, match="refused a write to run 'task-1'.*nothing was written"):
            await store.save_run("task-1", {"turn": 3}, {})
        with pytest.raises(RunLockLostError):
            await store.save_checkpoint("task-1", '{"turn": 4}', "{}", ("9", "Node", "1"), [(0, 9, "Node", None)])
        with pytest.raises(RunLockLostError):
            await store.save_step("task-1", "10", "Node", "late")
        with pytest.raises(RunLockLostError, match="task-1-record"):
            await store.save_run("task-1-record", {"owner": "x"}, {})
        assert lease.lost is not None and heard == [lease.lost]
    assert await store.load_run("task-1") == {"turn": 2}
    assert await store.load_steps("task-1") == {}
    assert await store.load_run("task-1-record") is None
    assert admin.get(store.lock_key("task-1")) == "another-holder"
    await store.save_run("task-1", {"turn": 5}, {})  # nobody here holds it now: an ordinary write
    assert await store.load_run("task-1") == {"turn": 5}


@needs_server
async def test_a_lost_lease_is_reported_by_its_renewal(store: RedisPersistence, admin: Any) -> None:
    lost = asyncio.Event()
    async with store.run_lock("task-1", lease=0.3) as lease:
        lease.on_lost(lambda detail: lost.set())
        admin.set(store.lock_key("task-1"), "another-holder")
        await asyncio.wait_for(lost.wait(), 10)
        assert "another holder's token" in (lease.lost or "")


@needs_server
async def test_the_lease_is_renewed_while_a_synchronous_node_blocks(store: RedisPersistence, admin: Any) -> None:
    """A plain ``def`` node runs in a worker thread, so the event loop keeps renewing the lease."""
    started, release = threading.Event(), threading.Event()

    class Blocking(BaseNode):
        def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> str:
            started.set()
            release.wait(30)
            return "done"

    async with store.run_lock("task-1", lease=0.3) as lease:
        run = asyncio.create_task(Flow(Blocking()).run({}, run_id="task-1", persistence=store))
        await asyncio.to_thread(started.wait, 30)
        renewals, seen = 0, lease.expires
        while renewals < 4:  # four renewals: more than a whole lease went by while the node blocked
            await asyncio.sleep(0.02)
            if lease.expires != seen:
                renewals, seen = renewals + 1, lease.expires
            assert lease.lost is None
        release.set()
        result = await asyncio.wait_for(run, 30)
    assert result.status == "completed" and lease.lost is None
    assert admin.exists(store.lock_key("task-1")) == 0
