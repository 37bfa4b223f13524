"""The SQL of the SQLite backend: its tables and the statements a checkpoint writes."""

from __future__ import annotations

__all__ = [
    "APPEND_TRACE",
    "DROP_KEY",
    "DROP_STATE",
    "PUT_KEY",
    "RESET_KEY",
    "SCHEMA",
    "TRACE_TIMINGS",
    "UPSERT_RUN",
    "UPSERT_STEP",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS pocketmesh_runs (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL DEFAULT (julianday('now')),
    updated_at REAL NOT NULL DEFAULT (julianday('now'))
);
CREATE TABLE IF NOT EXISTS pocketmesh_steps (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    node_name TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, node_name)
);
CREATE TABLE IF NOT EXISTS pocketmesh_trace (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    step INTEGER NOT NULL,
    node TEXT NOT NULL,
    action TEXT,
    started_at REAL,
    duration_ms REAL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pocketmesh_state (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    part INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key, part)
);
"""

TRACE_TIMINGS = ("started_at", "duration_ms")
"""Columns files written before steps were timed lack; they are added on first use."""

UPSERT_RUN = (
    "INSERT INTO pocketmesh_runs (run_id, state, params) VALUES (?, ?, ?) "
    "ON CONFLICT(run_id) DO UPDATE SET state = excluded.state, params = excluded.params, "
    "updated_at = julianday('now')"
)
UPSERT_STEP = (
    "INSERT OR REPLACE INTO pocketmesh_steps (run_id, step_id, node_name, result) "
    "VALUES (?, ?, ?, ?)"
)
PUT_KEY = "INSERT OR REPLACE INTO pocketmesh_state (run_id, key, part, pos, value) VALUES (?, ?, ?, ?, ?)"
DROP_KEY = "DELETE FROM pocketmesh_state WHERE run_id = ? AND key = ?"
RESET_KEY = "DELETE FROM pocketmesh_state WHERE run_id = ? AND key = ? AND part > 0"
DROP_STATE = "DELETE FROM pocketmesh_state WHERE run_id = ?"
APPEND_TRACE = (
    "INSERT OR REPLACE INTO pocketmesh_trace (run_id, seq, step, node, action, started_at, duration_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
