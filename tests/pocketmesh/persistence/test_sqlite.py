"""SQLite specifics: real files, other processes, WAL, concurrent writers, event loops."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pocketmesh import BaseNode, Flow, PersistenceError, SQLitePersistence, load_run_record
from pocketmesh.persistence.sqlite import default_path

ROOT = Path(__file__).resolve().parents[3]

FLOW_MODULE = textwrap.dedent(
    """
    from pocketmesh import BaseNode, Flow

    class Ask(BaseNode):
        async def finalize(self, shared, prep, result, params):
            shared["turns"] = shared.get("turns", 0) + 1
            return "input-required"

    class Answer(BaseNode):
        async def finalize(self, shared, prep, result, params):
            shared["answer"] = "hello " + shared["input"]
            shared["pid_answered"] = __import__("os").getpid()

    ask = Ask()
    ask - "input-required" >> Answer()
    flow = Flow(ask)
    """
)


def run_python(code: str, tmp_path: Path, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_run_paused_here_resumes_in_another_process(tmp_path: Path) -> None:
    (tmp_path / "convflow.py").write_text(FLOW_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        from convflow import flow  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    db = tmp_path / "shared.sqlite"
    paused = await flow.run({}, run_id="x", persistence=SQLitePersistence(db))
    assert paused.status == "input-required"

    out = run_python(
        textwrap.dedent(
            f"""
            import asyncio, json
            from pocketmesh import SQLitePersistence, load_run_record
            from convflow import flow

            async def main():
                store = SQLitePersistence({str(db)!r})
                record = await load_run_record(store, "x")
                result = await flow.run({{**record.shared, "input": "there"}}, run_id="x", persistence=store)
                print(json.dumps([result.status, result.shared]))

            asyncio.run(main())
            """
        ),
        tmp_path,
    )
    assert '"completed"' in out and '"hello there"' in out
    record = await load_run_record(SQLitePersistence(db), "x")
    assert record is not None and record.status == "completed"
    assert record.shared["turns"] == 1


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pocketmesh import BaseNode, Flow, SQLitePersistence

    class Tick(BaseNode):
        async def finalize(self, shared, prep, result, params):
            shared["n"] += 1
            return "again" if shared["n"] < 40 else "done"

    tick = Tick()
    tick - "again" >> tick
    tick - "done" >> BaseNode()
    flow = Flow(tick)

    async def main(db, name, other, least):
        store = SQLitePersistence(db)
        runs = 0
        # Write until this process has written `least` runs and has seen the other write as
        # many: so both processes were writing the file at the same time.
        while True:
            result = await flow.run({"n": 0}, run_id=f"{name}-{runs}", persistence=store)
            assert result.status == "completed", result.error
            runs += 1
            seen = sum(run.startswith(other + "-") for run in await store.list_runs())
            if runs >= least and seen >= least:
                break
        print(runs)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)
RUNS = 25
"""Runs of 41 steps each process writes at least, while the other writes too."""


def test_two_processes_write_one_file_at_the_same_time(tmp_path: Path) -> None:
    db = tmp_path / "busy.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), name, other, str(RUNS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("a", "b"), ("b", "a"))
    ]
    counts = {}
    for name, proc in zip(("a", "b"), procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
        counts[name] = int(out.strip())
    assert counts["a"] >= RUNS and counts["b"] >= RUNS

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT run_id, state FROM pocketmesh_runs ORDER BY created_at, rowid").fetchall()
    steps = conn.execute("SELECT run_id, COUNT(*) FROM pocketmesh_steps GROUP BY run_id").fetchall()
    conn.close()
    assert len(rows) == counts["a"] + counts["b"]
    # every run kept every one of its 41 steps, and finished
    assert {count for _, count in steps} == {41}
    assert all('"status":"completed"' in state for _, state in rows)
    # The writers' runs interleave in the file: they wrote it at the same time.
    writers = [run_id.split("-")[0] for run_id, _ in rows]
    switches = sum(1 for x, y in zip(writers, writers[1:]) if x != y)
    assert switches >= 2, writers


def test_the_store_is_not_bound_to_one_event_loop(tmp_path: Path) -> None:
    store = SQLitePersistence(tmp_path / "loops.sqlite")
    flow = Flow(BaseNode())
    asyncio.run(flow.run({}, run_id="one", persistence=store))
    asyncio.run(flow.run({}, run_id="two", persistence=store))
    assert asyncio.run(store.list_runs()) == ["one", "two"]


async def test_wal_mode_and_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POCKETMESH_DB_PATH", str(tmp_path / "env.sqlite"))
    assert default_path() == tmp_path / "env.sqlite"
    store = SQLitePersistence()
    await Flow(BaseNode()).run({}, persistence=store)
    conn = sqlite3.connect(tmp_path / "env.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    monkeypatch.delenv("POCKETMESH_DB_PATH")
    assert default_path() == Path("pocketmesh.sqlite")


async def test_steps_are_recorded(tmp_path: Path) -> None:
    store = SQLitePersistence(tmp_path / "steps.sqlite")
    first, second = BaseNode(name="First"), BaseNode(name="Second")
    first >> second
    await Flow(first).run({}, run_id="r", persistence=store)
    assert await store.load_steps("r") == {
        "First-1": {"action": "default"},
        "Second-2": {"action": "default"},
    }


async def test_an_unusable_file_is_a_persistence_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_text("this is not a database" * 100)
    with pytest.raises(PersistenceError, match="not-a-db.sqlite"):
        await Flow(BaseNode()).run({}, persistence=SQLitePersistence(bad))


def test_synchronous_mode_is_validated() -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        SQLitePersistence(":memory:", synchronous="sometimes")
