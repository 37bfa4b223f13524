"""The SQL of the PostgreSQL backend, composed once per table prefix and storage type."""

from __future__ import annotations

from typing import Any


class Statements:
    """The SQL of one table prefix and storage type, composed once."""

    def __init__(self, psycopg: Any, prefix: str, storage: str) -> None:
        sql = psycopg.sql
        names = {
            "runs": sql.Identifier(f"{prefix}_runs"),
            "steps": sql.Identifier(f"{prefix}_steps"),
            "trace": sql.Identifier(f"{prefix}_trace"),
            "state": sql.Identifier(f"{prefix}_state"),
            "names": sql.Identifier(f"{prefix}_runs_by_name"),
            "json": sql.SQL(storage.upper()),
        }

        def q(text: str) -> Any:
            return sql.SQL(text).format(**names)

        self.schema = [
            q(
                "CREATE TABLE IF NOT EXISTS {runs} ("
                " run_id TEXT PRIMARY KEY,"
                " seq BIGINT GENERATED ALWAYS AS IDENTITY,"
                " state {json} NOT NULL,"
                " params {json} NOT NULL,"
                " created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                " updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            ),
            q(
                "CREATE TABLE IF NOT EXISTS {steps} ("
                " run_id TEXT NOT NULL,"
                " step_id TEXT NOT NULL,"
                " node_name TEXT NOT NULL,"
                " seq BIGINT GENERATED ALWAYS AS IDENTITY,"
                " result {json} NOT NULL,"
                " PRIMARY KEY (run_id, step_id, node_name))"
            ),
            # DDL on an existing table locks it against every replica's writes, and a replica
            # starting while others write would deadlock with them: only what is missing is run.
            sql.SQL(
                "DO $$ BEGIN IF to_regclass({index}) IS NULL THEN "
                'CREATE INDEX {names} ON {runs} (run_id COLLATE "C"); END IF; END $$'
            ).format(index=sql.Literal(f"{prefix}_runs_by_name"), **names),
            q(
                "CREATE TABLE IF NOT EXISTS {trace} ("
                " run_id TEXT NOT NULL,"
                " seq INTEGER NOT NULL,"
                " step BIGINT NOT NULL,"
                " node TEXT NOT NULL,"
                " action TEXT,"
                " PRIMARY KEY (run_id, seq))"
            ),
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass({table}) "
                "AND attname = 'duration_ms' AND NOT attisdropped) THEN "
                "ALTER TABLE {trace} ADD COLUMN IF NOT EXISTS started_at FLOAT8, "
                "ADD COLUMN IF NOT EXISTS duration_ms FLOAT8; END IF; END $$"
            ).format(table=sql.Literal(f"{prefix}_trace"), **names),
        ]
        self.schema.append(q(
            "CREATE TABLE IF NOT EXISTS {state} ("
            " run_id TEXT NOT NULL,"
            " key TEXT NOT NULL,"
            " part INTEGER NOT NULL,"
            " pos INTEGER NOT NULL,"
            " value {json} NOT NULL,"
            " PRIMARY KEY (run_id, key, part))"
        ))
        # The shared state's rows: what a checkpoint drops (every row but the part 0 of the keys
        # it writes when replacing all; dropped keys; the appended parts of keys written whole),
        # then what it writes. The two never touch the same row.
        self.drop_state = q(
            "DELETE FROM {state} WHERE run_id = %s AND ((%s AND NOT (part = 0 AND key = ANY(%s::text[]))) "
            "OR key = ANY(%s::text[]) OR (part > 0 AND key = ANY(%s::text[])))"
        )
        self.put_state = q(
            "INSERT INTO {state} (run_id, key, part, pos, value) SELECT %s, k, p, o, v::{json} "
            "FROM unnest(%s::text[], %s::integer[], %s::integer[], %s::text[]) AS u(k, p, o, v) "
            "ON CONFLICT (run_id, key, part) DO UPDATE SET pos = excluded.pos, value = excluded.value"
        )
        self.upsert_run = q(
            "INSERT INTO {runs} (run_id, state, params) VALUES (%s, %s::{json}, %s::{json}) "
            "ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, "
            "params = excluded.params, updated_at = now()"
        )
        self.upsert_step = q(
            "INSERT INTO {steps} (run_id, step_id, node_name, result) "
            "VALUES (%s, %s, %s, %s::{json}) "
            "ON CONFLICT (run_id, step_id, node_name) DO UPDATE SET result = excluded.result"
        )
        self.append_trace = q(
            "INSERT INTO {trace} (run_id, seq, step, node, action, started_at, duration_ms) SELECT %s, * "
            "FROM unnest(%s::integer[], %s::bigint[], %s::text[], %s::text[], %s::float8[], %s::float8[]) "
            "ON CONFLICT (run_id, seq) DO UPDATE SET step = excluded.step, node = excluded.node, "
            "action = excluded.action, started_at = excluded.started_at, duration_ms = excluded.duration_ms"
        )
        # One statement is one transaction: a step, its trace rows, the changed keys of the
        # shared state and the record land together.
        self._checkpoints: dict[tuple[bool, bool, bool], Any] = {}
        self._sql = sql
        # The rows only when the record's revision is not the one the caller has.
        self.load_run = q(
            "SELECT r.state::text, CASE WHEN (r.state::json ->> 'rev') = %s THEN NULL ELSE "
            "(SELECT json_agg(json_build_array(t.seq, t.step, t.node, "
            "t.action, t.started_at, t.duration_ms))::text FROM {trace} t WHERE t.run_id = r.run_id) END, "
            "CASE WHEN (r.state::json ->> 'rev') = %s THEN NULL ELSE "
            "(SELECT json_agg(json_build_array(s.key, s.part, s.pos, s.value::text) ORDER BY s.pos, s.part)::text "
            "FROM {state} s WHERE s.run_id = r.run_id) END "
            "FROM {runs} r WHERE r.run_id = %s"
        )
        self.list_runs = q("SELECT run_id FROM {runs} ORDER BY seq")
        # Byte order ("C"), whatever the database's collation, so the range is a prefix.
        self.list_runs_between = q(
            'SELECT run_id FROM {runs} WHERE run_id COLLATE "C" >= %s AND run_id COLLATE "C" < %s ORDER BY seq'
        )
        self.load_steps = q(
            "SELECT step_id, node_name, result::text FROM {steps} WHERE run_id = %s "
            "ORDER BY CASE WHEN step_id ~ '^[0-9]{{1,18}}$' THEN step_id::bigint END "
            "NULLS LAST, seq"
        )
        self.delete_run = q(
            "WITH steps AS (DELETE FROM {steps} WHERE run_id = %s), "
            "trace AS (DELETE FROM {trace} WHERE run_id = %s), "
            "state AS (DELETE FROM {state} WHERE run_id = %s) "
            "DELETE FROM {runs} WHERE run_id = %s"
        )

    def checkpoint(self, with_step: bool, with_trace: bool, with_state: bool) -> Any:
        """The one-statement checkpoint: optional step, trace rows and state rows, then the record."""
        query = self._checkpoints.get((with_step, with_trace, with_state))
        if query is None:
            sql = self._sql
            parts = [(with_step, "step", self.upsert_step), (with_trace, "trace", self.append_trace),
                     (with_state, "sdrop", self.drop_state), (with_state, "sput", self.put_state)]
            ctes = [sql.SQL("{} AS (").format(sql.SQL(name)) + stmt + sql.SQL(")") for on, name, stmt in parts if on]
            head = sql.SQL("WITH ") + sql.SQL(", ").join(ctes) + sql.SQL(" ") if ctes else sql.SQL("")
            query = self._checkpoints[with_step, with_trace, with_state] = head + self.upsert_run
        return query
