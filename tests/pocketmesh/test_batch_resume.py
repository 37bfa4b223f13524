"""A BatchFlow run interrupted mid-batch (a killed process, a stepper between steps) continues
at the set it stopped in, and never runs a finished set again. Side effects are counted in a
file outside the run's state, so a re-run shows up whatever the state says."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pocketmesh import (
    BaseNode,
    BatchFlow,
    Flow,
    FlowStepper,
    InMemoryPersistence,
    PersistenceError,
    SQLitePersistence,
    load_run_record,
)
from tests.pocketmesh import batch_job
from tests.pocketmesh.backends import DiesAfterSave

JOB = Path(batch_job.__file__)
EVERY_NODE = Counter({(node, n): 1 for node in ("Read", "Write") for n in range(batch_job.SETS)})


def run_job(tmp_path: Path, mode: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(JOB), str(tmp_path / "runs.sqlite"), "job", str(tmp_path / "effects"), mode]
    return subprocess.run([*args, *([crash] if crash else [])], capture_output=True, text=True, check=False)


def effects(tmp_path: Path) -> Counter[tuple[str, int]]:
    lines = (tmp_path / "effects").read_text().split()
    return Counter((node, int(n)) for node, n in zip(lines[::2], lines[1::2]))


async def saved_batch(tmp_path: Path) -> dict[str, Any]:
    record = await load_run_record(SQLitePersistence(tmp_path / "runs.sqlite"), "job")
    assert record is not None and record.status == "running"
    (frame,) = record.position
    return frame["batch"]  # type: ignore[no-any-return]


async def test_a_killed_sequential_batch_continues_at_the_set_it_stopped_in(tmp_path: Path) -> None:
    crashed = run_job(tmp_path, "sequential", crash="Write:3")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    saved = await saved_batch(tmp_path)
    assert saved["done"] == {"0": "default", "1": "default", "2": "default"}
    assert [frame["node"] for frame in saved["lanes"]["3"]] == ["Write"]  # set 3 stopped before Write
    before = effects(tmp_path)
    assert before == Counter({**{(n, i): 1 for n in ("Read", "Write") for i in range(3)}, ("Read", 3): 1})

    resumed = run_job(tmp_path, "sequential")
    assert resumed.stdout.strip() == "completed", resumed.stderr
    assert effects(tmp_path) == EVERY_NODE  # nothing ran twice, nothing was skipped
    record = await load_run_record(SQLitePersistence(tmp_path / "runs.sqlite"), "job")
    assert record is not None and record.shared["written"] == list(range(batch_job.SETS))


async def test_a_killed_parallel_batch_keeps_finished_sets_and_continues_the_others(tmp_path: Path) -> None:
    crashed = run_job(tmp_path, "parallel", crash="Write:3")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    saved = await saved_batch(tmp_path)
    before = effects(tmp_path)
    finished = {int(i) for i in saved["done"]} | {
        int(i) for i, frames in saved["lanes"].items() if frames and frames[0]["node"] is None
    }
    at_write = {int(i) for i, frames in saved["lanes"].items() if frames and frames[0]["node"] == "Write"}
    # Set 3 was saved past Read when it died, and the sets before it had finished.
    assert 3 in at_write and len(finished) >= 2
    assert all(before[("Write", n)] == 1 for n in finished)

    resumed = run_job(tmp_path, "parallel")
    assert resumed.stdout.strip() == "completed", resumed.stderr
    after = effects(tmp_path)
    for n in finished:  # finished sets are kept: not one of their nodes ran again
        assert (after[("Read", n)], after[("Write", n)]) == (1, 1), n
    for n in at_write:  # continued from the saved node: Read did not run again
        assert after[("Read", n)] == 1 and after[("Write", n)] >= 1, n
    assert after[("Write", 3)] == 1  # it died before its Write had any effect
    assert all(after[("Write", n)] >= 1 for n in range(batch_job.SETS))


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
async def test_a_stepper_runs_one_leaf_per_step_and_fresh_steppers_continue(tmp_path: Path, mode: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_JOB_EFFECTS", str(tmp_path / "effects"))
    (tmp_path / "effects").write_text("")
    db = tmp_path / "runs.sqlite"
    nodes: list[str | None] = []
    for step in range(2 * batch_job.SETS):
        # A new stepper and a new store each step: all that carries over is in the SQLite file.
        stepper = FlowStepper(batch_job.build(mode), persistence=SQLitePersistence(db), run_id="job",
                              shared={} if step == 0 else None)
        result = await stepper.step()
        nodes.append(result.node)
        assert sum(effects(tmp_path).values()) == step + 1  # exactly one leaf ran
        assert result.done == (step == 2 * batch_job.SETS - 1)
    assert effects(tmp_path) == EVERY_NODE
    # Even in parallel mode a step is one leaf, so the stepper walks the sets one at a time.
    assert nodes == ["Read", "Write"] * batch_job.SETS
    record = await load_run_record(SQLitePersistence(db), "job")
    assert record is not None and record.status == "completed"


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
async def test_a_stepper_without_persistence_walks_the_batch_once(tmp_path: Path, mode: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_JOB_EFFECTS", str(tmp_path / "effects"))
    (tmp_path / "effects").write_text("")
    stepper = FlowStepper(batch_job.build(mode), shared={})
    done = [(await stepper.step()).done for _ in range(2 * batch_job.SETS)]
    assert done == [False] * (2 * batch_job.SETS - 1) + [True]
    assert effects(tmp_path) == EVERY_NODE
    assert stepper.shared is not None and sorted(stepper.shared["written"]) == list(range(batch_job.SETS))


class Killed(Exception):
    """Stands for the process dying right after a save."""


def nested_batches(ran: Counter[tuple[str, int, int]], parallel: bool) -> Flow:
    """Outer sets o=0..2, each running an inner BatchFlow over i=0..1 of A -> B."""

    class Leaf(BaseNode):
        async def finalize(self, shared, prep, result, params):  # type: ignore[override]
            ran[(self.name, params["o"], params["i"])] += 1

    class Outer(BatchFlow):
        async def prepare(self, shared, params):  # type: ignore[override]
            return [{"o": o} for o in range(3)]

    class Inner(BatchFlow):
        async def prepare(self, shared, params):  # type: ignore[override]
            return [{"i": i} for i in range(2)]

    a = Leaf(name="A")
    a >> Leaf(name="B")
    inner = Inner(a, name="In").set_options(parallel=parallel, max_concurrency=2)
    start = BaseNode(name="Start")
    start >> Outer(inner, name="Out").set_options(parallel=parallel, max_concurrency=2) >> BaseNode(name="End")
    return Flow(start)


@pytest.mark.parametrize("parallel", [False, True])
async def test_a_crash_after_any_save_inside_nested_batches_resumes_without_rerunning(parallel: bool) -> None:
    crash_points = 0
    for after in range(1, 100):
        ran: Counter[tuple[str, int, int]] = Counter()
        store = InMemoryPersistence()
        try:
            finished = await nested_batches(ran, parallel).run({}, run_id="r", persistence=DiesAfterSave(store, after, Killed))
        except PersistenceError as error:
            assert isinstance(error.__cause__, Killed)
        else:
            assert finished.status == "completed"
            break  # every save happened: no crash point left
        crash_points += 1
        record = await load_run_record(store, "r")
        assert record is not None
        if record.status != "completed":  # the last save may be the one that died
            resumed = await nested_batches(ran, parallel).run(None, run_id="r", persistence=store)
            assert resumed.status == "completed"
        assert len(ran) == 12  # every (node, outer set, inner set) ran
        # In order, every save follows a node: none ever runs twice. In parallel, a node that
        # was running in another pass when the process died runs again, and nothing else.
        assert max(ran.values()) <= (2 if parallel else 1), (after, ran)
    assert crash_points > 20
