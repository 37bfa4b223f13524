"""``pocketmesh runs`` lists the runs in a store, ``pocketmesh runs show RUN_ID`` prints one:
on SQLite, PostgreSQL, Redis and a five-method backend of one's own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from pocketmesh import BaseNode, Flow, SQLitePersistence
from pocketmesh.cli import main

ROOT = Path(__file__).resolve().parents[2]


class Ask(BaseNode):
    async def finalize(self, shared, prep, result, params):  # type: ignore[override]
        shared["asked"] = True
        return "input-required"


class Boom(BaseNode):
    async def execute(self, prep, shared, params, attempt):  # type: ignore[override]
        raise ValueError("card declined")


async def fill(store: Any) -> dict[str, Any]:
    """Three runs: one paused, one completed, one failed."""
    paused = await Flow(Ask(), name="Asking").run({"who": "ada"}, run_id="run-paused", persistence=store)
    done = await Flow(BaseNode(name="Only"), name="Quick").run({"n": 1}, run_id="run-done", persistence=store)
    failed = await Flow(Boom(), name="Payments").run({"order": 7}, run_id="run-failed", persistence=store)
    return {"paused": paused, "done": done, "failed": failed}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pocketmesh.cli", *args], env=env, capture_output=True, text=True, timeout=60)


def table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_runs_lists_and_filters_and_shows_runs_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"

    async def setup() -> dict[str, Any]:
        store = SQLitePersistence(db)
        try:
            return await fill(store)
        finally:
            await store.close()

    results = asyncio.run(setup())
    listed = cli("runs", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    rows = table(listed.stdout)
    assert rows[0] == ["RUN ID", "FLOW", "STATUS", "STEPS", "UPDATED"]
    assert [row[:4] for row in rows[1:]] == [
        ["run-paused", "Asking", "input-required", "1"],
        ["run-done", "Quick", "completed", "1"],
        ["run-failed", "Payments", "failed", "1"],
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", row[4]) for row in rows[1:])

    failed = cli("runs", "--db", str(db), "--status", "failed")
    assert [row[0] for row in table(failed.stdout)[1:]] == ["run-failed"]
    none = cli("runs", "--db", str(db), "--status", "canceled")
    assert none.returncode == 0 and none.stdout.startswith("no canceled runs in")

    shown = cli("runs", "show", "run-failed", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "status   failed" in text and "flow     Payments" in text
    assert f"error    ValueError: card declined (error id {results['failed'].error_id})" in text
    step = results["failed"].trace[0]
    assert re.search(rf"\n\s+1  Boom  -> \(failed\)\s+{step.duration_ms:.3f} ms  started \d{{4}}-", text)
    assert json.loads(text.split("\nshared\n", 1)[1]) == {"order": 7}

    paused = cli("runs", "--db", str(db), "show", "run-paused")
    assert "next     Ask" in paused.stdout and "-> 'input-required'" in paused.stdout


def test_runs_show_of_an_unknown_run_and_a_missing_file_fail_clearly(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    asyncio.run(Flow(BaseNode()).run(run_id="x", persistence=SQLitePersistence(db)))
    unknown = cli("runs", "show", "nope", "--db", str(db))
    assert unknown.returncode == 1 and "no run 'nope' in " in unknown.stderr
    # A command line's advice: how to list the store's runs, not how to start one in code.
    assert unknown.stderr.rstrip().endswith(f"list the runs it holds with: pocketmesh runs --db {db}"), unknown.stderr
    assert "flow.run(" not in unknown.stderr
    missing = cli("runs", "--db", str(tmp_path / "absent.sqlite"))
    assert missing.returncode == 2 and "no SQLite store at" in missing.stderr
    assert not (tmp_path / "absent.sqlite").exists()
    bad = cli("runs", "--db", str(db), "--prefix", "x")
    assert bad.returncode == 2 and "--prefix applies to PostgreSQL and Redis" in bad.stderr


def test_runs_leaves_out_records_that_are_not_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.sqlite"

    async def setup() -> None:
        store = SQLitePersistence(db)
        await Flow(BaseNode(), name="Real").run(run_id="real", persistence=store)
        await store.save_run("a2a-task:123", {"owner": "x", "taskProto": ""}, {})
        await store.close()

    asyncio.run(setup())
    assert main(["runs", "--db", str(db)]) == 0
    assert [row[0] for row in table(capsys.readouterr().out)[1:]] == ["real"]


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_runs_on_a_server_store(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"postgres": "POCKETMESH_POSTGRES_DSN", "redis": "POCKETMESH_REDIS_URL"}[kind]
    url = os.environ.get(env)
    if not url:
        pytest.skip(f"needs {env} (eval \"$(.ci/services.sh)\" starts the servers)")
    from tests.pocketmesh.persistence.conftest import drop_backend

    if kind == "postgres":
        from pocketmesh.persistence.postgres import PostgresPersistence

        prefix = f"pmtest_{uuid.uuid4().hex[:12]}"
        store: Any = PostgresPersistence(url, table_prefix=prefix)
    else:
        from pocketmesh.persistence.redis import RedisPersistence

        prefix = f"pmtest:{uuid.uuid4().hex[:12]}:"
        store = RedisPersistence(url, prefix=prefix)
    try:
        asyncio.run(fill(store))
        assert main(["runs", "--db", url, "--prefix", prefix, "--status", "input-required"]) == 0
        assert [row[:3] for row in table(capsys.readouterr().out)[1:]] == [["run-paused", "Asking", "input-required"]]
        assert main(["runs", "show", "run-done", "--db", url, "--prefix", prefix]) == 0
        shown = capsys.readouterr().out
        assert "status   completed" in shown and re.search(r"1  Only  -> 'default'\s+\d+\.\d{3} ms", shown)
    finally:
        drop_backend(store)


BACKEND = textwrap.dedent(
    """
    import json, os

    class JsonFilePersistence:
        '''Five methods, runs kept in one JSON file.'''

        def __init__(self):
            self.path = os.environ["RUNS_FILE"]

        def _all(self):
            try:
                with open(self.path) as f:
                    return json.load(f)
            except FileNotFoundError:
                return {}

        def _write(self, runs):
            with open(self.path, "w") as f:
                json.dump(runs, f)

        async def save_run(self, run_id, state, params):
            runs = self._all()
            runs[run_id] = state
            self._write(runs)

        async def load_run(self, run_id):
            return self._all().get(run_id)

        async def save_step(self, run_id, step_id, node_name, result):
            pass

        async def list_runs(self):
            return list(self._all())

        async def delete_run(self, run_id):
            runs = self._all()
            runs.pop(run_id, None)
            self._write(runs)
    """
)


def test_runs_on_a_five_method_backend_named_with_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "jsonstore.py").write_text(BACKEND)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNS_FILE", str(tmp_path / "runs.json"))
    monkeypatch.syspath_prepend(str(tmp_path))
    from jsonstore import JsonFilePersistence  # type: ignore[import-not-found]

    asyncio.run(fill(JsonFilePersistence()))
    assert main(["runs", "--backend", "jsonstore:JsonFilePersistence", "--status", "completed"]) == 0
    assert [row[:2] for row in table(capsys.readouterr().out)[1:]] == [["run-done", "Quick"]]
    assert main(["runs", "show", "run-failed", "--backend", "jsonstore:JsonFilePersistence"]) == 0
    assert "ValueError: card declined" in capsys.readouterr().out
    assert main(["runs", "--backend", "jsonstore:json"]) == 2
    assert "lacks the five persistence methods" in capsys.readouterr().err
