"""Trace steps carry when they started and how long they took, on every backend; records saved
before steps were timed still load, and files and tables made then are upgraded in place."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, InMemoryPersistence, Persistence, SQLitePersistence, TraceStep, load_run_record


class Ask(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        if "input" not in shared:
            return "input-required"
        return None


def timed(step: TraceStep) -> tuple[Any, ...]:
    return (step.step, step.node, step.action, step.started_at, step.duration_ms)


async def test_step_timings_survive_a_save_and_a_resume(backend: Persistence) -> None:
    ask = Ask()
    ask >> BaseNode(name="Reply")
    flow = Flow(ask)
    before = time.time()
    first = await flow.run({}, run_id="timed", persistence=backend)
    second = await flow.resume("timed", {"input": "yes"}, persistence=backend)
    assert second.status == "completed"
    for step in second.trace:
        assert step.started_at is not None and before <= step.started_at <= time.time()
        assert step.duration_ms is not None and step.duration_ms >= 0
    assert [s.started_at for s in second.trace] == sorted(s.started_at for s in second.trace)  # type: ignore[type-var]
    record = await load_run_record(backend, "timed")
    assert record is not None
    assert [timed(s) for s in record.trace] == [timed(s) for s in second.trace]
    assert timed(record.trace[0]) == timed(first.trace[0])
    assert record.updated_at is not None and record.updated_at >= second.trace[-1].started_at  # type: ignore[operator]


def test_timings_are_not_part_of_a_steps_identity() -> None:
    timed_step = TraceStep(1, "Ask", "default", 1700000000.0, 2.5)
    other_run = TraceStep(1, "Ask", "default", 1800000000.0, 7.0)
    assert timed_step == other_run and hash(timed_step) == hash(other_run)
    assert [timed_step] == [other_run] and {timed_step} == {other_run}
    assert timed_step == (1, "Ask", "default") and (1, "Ask", "default") == timed_step
    assert timed_step != TraceStep(1, "Ask", "error") and timed_step != (1, "Ask", "error")
    assert list(timed_step) == [1, "Ask", "default"]
    step, node, action = timed_step
    assert (step, node, action) == (1, "Ask", "default")
    assert timed_step._replace(action="x").duration_ms == 2.5
    assert TraceStep(2, "B", None).started_at is None


async def test_a_record_saved_before_steps_were_timed_loads_with_empty_timings() -> None:
    store = InMemoryPersistence()
    old = {
        "pocketmesh_run": 1, "status": "input-required", "flow": "Flow", "shared": {}, "params": {},
        "position": [{"node": "Ask", "last": "input-required", "prep": None}], "steps": 1,
        "since_input": 1, "action": "input-required", "error": None, "trace": [[1, "Ask", "input-required"]],
    }
    await store.save_run("old", old, {})
    record = await load_run_record(store, "old")
    assert record is not None and record.updated_at is None
    assert timed(record.trace[0]) == (1, "Ask", "input-required", None, None)
    result = await Flow(Ask()).resume("old", {"input": "now"}, persistence=store)
    assert result.status == "completed"
    assert [s.duration_ms is None for s in result.trace] == [True, False]


async def test_a_sqlite_file_from_before_timings_is_upgraded_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE pocketmesh_runs (run_id TEXT PRIMARY KEY, state TEXT NOT NULL, params TEXT NOT NULL,
            created_at REAL NOT NULL DEFAULT (julianday('now')), updated_at REAL NOT NULL DEFAULT (julianday('now')));
        CREATE TABLE pocketmesh_steps (run_id TEXT NOT NULL, step_id TEXT NOT NULL, node_name TEXT NOT NULL,
            result TEXT NOT NULL, PRIMARY KEY (run_id, step_id, node_name));
        CREATE TABLE pocketmesh_trace (run_id TEXT NOT NULL, seq INTEGER NOT NULL, step INTEGER NOT NULL,
            node TEXT NOT NULL, action TEXT, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
        """
    )
    state = {
        "pocketmesh_run": 1, "status": "input-required", "flow": "Flow", "shared": {}, "params": {},
        "position": [{"node": "Ask", "last": "input-required", "prep": None}], "steps": 1,
        "since_input": 1, "action": "input-required", "error": None, "trace_rows": 1,
    }
    conn.execute("INSERT INTO pocketmesh_runs (run_id, state, params) VALUES (?, ?, '{}')", ("old", json.dumps(state)))
    conn.execute("INSERT INTO pocketmesh_trace VALUES ('old', 0, 1, 'Ask', 'input-required')")
    conn.commit()
    conn.close()

    store = SQLitePersistence(path)
    try:
        result = await Flow(Ask()).resume("old", {"input": "now"}, persistence=store)
        record = await load_run_record(store, "old")
    finally:
        await store.close()
    assert result.status == "completed"
    assert record is not None
    assert [(s.node, s.duration_ms is None) for s in record.trace] == [("Ask", True), ("Ask", False)]


@pytest.mark.skipif(not os.environ.get("POCKETMESH_POSTGRES_DSN"), reason="needs POCKETMESH_POSTGRES_DSN")
async def test_a_postgres_trace_table_from_before_timings_gets_its_columns() -> None:
    import psycopg

    from pocketmesh.persistence.postgres import PostgresPersistence
    from tests.pocketmesh.persistence.conftest import drop_backend

    store = PostgresPersistence(table_prefix=f"pmtest_{uuid.uuid4().hex[:12]}")
    try:
        with psycopg.connect(store.dsn, autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE {store.table_prefix}_trace (run_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                f"step BIGINT NOT NULL, node TEXT NOT NULL, action TEXT, PRIMARY KEY (run_id, seq))"
            )
            conn.execute(f"INSERT INTO {store.table_prefix}_trace VALUES ('r', 0, 1, 'Old', 'default')")
        result = await Flow(Ask()).run({}, run_id="new", persistence=store)
        record = await load_run_record(store, "new")
        with psycopg.connect(store.dsn, autocommit=True) as conn:
            old = conn.execute(
                f"SELECT node, started_at, duration_ms FROM {store.table_prefix}_trace WHERE run_id = 'r'"
            ).fetchall()
        await store.close()
    finally:
        drop_backend(store)
    assert result.status == "input-required"
    assert record is not None and record.trace[0].duration_ms == result.trace[0].duration_ms
    assert old == [("Old", None, None)]


@pytest.mark.skipif(not os.environ.get("POCKETMESH_REDIS_URL"), reason="needs POCKETMESH_REDIS_URL")
async def test_redis_trace_rows_from_before_timings_still_load() -> None:
    from pocketmesh.persistence.redis import RedisPersistence
    from tests.pocketmesh.persistence.conftest import drop_backend

    store = RedisPersistence(prefix=f"pmtest:{uuid.uuid4().hex[:12]}:")
    try:
        await Flow(Ask()).run({}, run_id="old", persistence=store)
        client = await store._client()
        # Rewrite the stored row the way it was written before steps were timed.
        await client.hset(store.trace_key("old"), "0", json.dumps([1, "Ask", "input-required"]))
        record = await load_run_record(store, "old")
        resumed = await Flow(Ask()).resume("old", {"input": "now"}, persistence=store)
        again = await load_run_record(store, "old")
        await store.close()
    finally:
        drop_backend(store)
    assert record is not None and timed(record.trace[0]) == (1, "Ask", "input-required", None, None)
    assert resumed.status == "completed"
    assert again is not None and [s.duration_ms is None for s in again.trace] == [True, False]
