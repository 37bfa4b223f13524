"""PostgreSQL specifics: conformance, replicas sharing a database, the per-run advisory lock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, PersistenceError, load_run_record
from pocketmesh_testing.doubles.conformance import PersistenceConformance
from tests.pocketmesh.persistence.conftest import drop_backend

psycopg = pytest.importorskip(
    "psycopg", reason="PostgreSQL tests need psycopg: pip install 'pocketmesh[postgres]'"
)

from pocketmesh.persistence.postgres import PostgresPersistence, advisory_key, redact  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DSN = os.environ.get("POCKETMESH_POSTGRES_DSN")
needs_server = pytest.mark.skipif(
    not DSN,
    reason="PostgreSQL tests need a server: set POCKETMESH_POSTGRES_DSN, or run "
    'eval "$(.ci/services.sh)" to start one on loopback',
)


def fresh(**options: Any) -> PostgresPersistence:
    """A store on its own tables."""
    return PostgresPersistence(table_prefix=f"pmtest_{uuid.uuid4().hex[:12]}", **options)


@pytest.fixture
def store() -> Iterator[PostgresPersistence]:
    """A store on its own tables, dropped afterwards."""
    made = fresh()
    yield made
    drop_backend(made)


@needs_server
class TestConformance(PersistenceConformance):
    @pytest.fixture(params=["text", "jsonb", "no-pool"])
    def backend(self, request: pytest.FixtureRequest) -> Iterator[PostgresPersistence]:
        """A fresh store per storage type, and one without idle connections."""
        options = {"pool_size": 0} if request.param == "no-pool" else {"storage": request.param}
        made = fresh(**options)
        yield made
        drop_backend(made)


# -- construction, no server needed -------------------------------------------------------------


def test_without_a_dsn_the_error_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POCKETMESH_POSTGRES_DSN", raising=False)
    with pytest.raises(ValueError, match="set POCKETMESH_POSTGRES_DSN"):
        PostgresPersistence()


def test_the_dsn_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCKETMESH_POSTGRES_DSN", "postgresql://u:secret@db.example/x")
    store = PostgresPersistence()
    assert store.dsn == "postgresql://u:secret@db.example/x"
    assert "secret" not in repr(store) and "***" in repr(store)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("table_prefix", "runs; DROP TABLE x", "table_prefix must be a plain SQL identifier"),
        ("storage", "xml", "storage must be one of text, jsonb"),
        ("pool_size", -1, "pool_size must be 0"),
    ],
)
def test_bad_options_are_named(option: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PostgresPersistence("postgresql://localhost/x", **{option: value})


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"pip install 'pocketmesh\[postgres\]'"):
        PostgresPersistence("postgresql://localhost/x")


def test_passwords_are_redacted() -> None:
    assert redact("postgresql://me:s3cr@t@h/db") == "postgresql://me:***@h/db"
    assert redact("host=h password='a b' user=me") == "host=h password=*** user=me"


def test_advisory_keys_are_signed_64_bit_and_stable() -> None:
    key = advisory_key("pocketmesh", "task-1")
    assert -(2**63) <= key < 2**63
    assert key == advisory_key("pocketmesh", "task-1") != advisory_key("other", "task-1")


# -- against a server ---------------------------------------------------------------------------


@needs_server
async def test_an_unreachable_server_is_a_persistence_error_without_the_password() -> None:
    store = PostgresPersistence("postgresql://me:hunter2@127.0.0.1:1/db", connect_timeout=1)
    with pytest.raises(PersistenceError, match=r"me:\*\*\*@127.0.0.1:1") as info:
        await store.list_runs()
    assert "hunter2" not in str(info.value)


@needs_server
async def test_replicas_share_runs_and_continue_each_others_turns(store: PostgresPersistence) -> None:
    from tests.pocketmesh.persistence.test_durable_runs import conversation

    other = PostgresPersistence(store.dsn, table_prefix=store.table_prefix)
    turn1 = await conversation().run({}, run_id="t", persistence=store)
    turn2 = await conversation().run({**turn1.shared, "input": "Ada"}, run_id="t", persistence=other)
    turn3 = await conversation().run({**turn2.shared, "input": "bye"}, run_id="t", persistence=store)
    assert turn3.status == "completed"
    assert turn3.shared["said"][-1] == "Goodbye"
    assert list(await other.load_steps("t")) == ["Ask-1", "Greet-2", "Chat-3"]
    await other.close()


@needs_server
async def test_replicas_creating_the_schema_at_once_do_not_collide() -> None:
    prefix = f"pmtest_{uuid.uuid4().hex[:12]}"
    stores = [PostgresPersistence(table_prefix=prefix) for _ in range(6)]
    try:
        await asyncio.gather(*(s.save_run(f"r{i}", {"i": i}, {}) for i, s in enumerate(stores)))
        assert sorted(await stores[0].list_runs()) == [f"r{i}" for i in range(6)]
    finally:
        for s in stores:
            await s.close()
        drop_backend(stores[0])


@needs_server
async def test_a_connection_the_server_dropped_is_replaced(store: PostgresPersistence) -> None:
    await store.save_run("r", {"v": 1}, {})
    with psycopg.connect(store.dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (f"%{store.table_prefix}%",),
        )
    assert await store.load_run("r") == {"v": 1}
    await store.close()


@needs_server
async def test_checkpoint_writes_the_step_the_trace_and_the_state_together(
    store: PostgresPersistence,
) -> None:
    first, second = BaseNode(name="First"), BaseNode(name="Second")
    first >> second
    await Flow(first).run({}, run_id="r", persistence=store)
    assert await store.load_steps("r") == {
        "First-1": {"action": "default"},
        "Second-2": {"action": "default"},
    }
    record = await load_run_record(store, "r")
    assert record is not None and [t.node for t in record.trace] == ["First", "Second"]
    state = await store.load_run("r")
    assert "trace_rows" not in state and len(state["trace"]) == 2
    await store.delete_run("r")
    assert await store.load_steps("r") == {} and await store.load_run("r") is None
    await store.close()


# -- run_lock -----------------------------------------------------------------------------------


@needs_server
async def test_run_lock_serializes_holders_on_separate_connections(store: PostgresPersistence) -> None:
    other = PostgresPersistence(store.dsn, table_prefix=store.table_prefix)
    inside: list[str] = []
    overlaps: list[str] = []

    async def turn(who: PostgresPersistence, name: str) -> None:
        async with who.run_lock("task-1"):
            if inside:
                overlaps.append(f"{name} entered while {inside} held the lock")
            inside.append(name)
            await asyncio.sleep(0.05)
            inside.remove(name)

    await asyncio.gather(*(turn(s, f"{i}") for i, s in enumerate([store, other] * 3)))
    assert overlaps == []
    # another run id is not blocked
    async with store.run_lock("task-1"), other.run_lock("task-2", timeout=1):
        pass


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pocketmesh.persistence.postgres import PostgresPersistence

    async def main():
        store = PostgresPersistence(sys.argv[1], table_prefix=sys.argv[2])
        async with store.run_lock("task-1"):
            print("locked", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print("released", flush=True)

    asyncio.run(main())
    """
)


def _holder(store: PostgresPersistence) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store.dsn, store.table_prefix],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@needs_server
async def test_run_lock_excludes_another_process_until_it_releases(store: PostgresPersistence) -> None:
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


def _lock_holders(store: PostgresPersistence, run_id: str) -> list[int]:
    """Backend pids holding the advisory lock of ``run_id``, read from ``pg_locks``."""
    key = advisory_key(store.table_prefix, run_id) & 0xFFFFFFFFFFFFFFFF
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return sorted(row[0] for row in rows)


@needs_server
async def test_run_lock_is_freed_when_its_holder_dies(store: PostgresPersistence) -> None:
    proc = _holder(store)
    try:
        holders = _lock_holders(store, "task-1")
        assert len(holders) == 1, holders  # the other process's session holds the lock
        dead_session = holders[0]
        with pytest.raises(PersistenceError, match="timed out after 0.2s waiting for the lock on run 'task-1'"):
            async with store.run_lock("task-1", timeout=0.2):
                pass
    finally:
        proc.kill()  # SIGKILL: no unlock, no goodbye to the server
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # The server ends the dead client's session, and the lock with it: another session takes it.
    async with store.run_lock("task-1", timeout=10):
        now = _lock_holders(store, "task-1")
        assert len(now) == 1 and now != [dead_session], (now, dead_session)
    assert _lock_holders(store, "task-1") == []
