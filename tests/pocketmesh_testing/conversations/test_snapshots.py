"""shared_snapshot: syrupy snapshots of shared state and traces, stable across runs and hash seeds."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

import pocketmesh.examples.greeting  # noqa: F401 - loaded before pytester's in-process runs
import pocketmesh_testing.plugin  # noqa: F401
from pocketmesh_testing.conversations.snapshots import dumps, normalise

PLUGIN: tuple[str, ...] = ()  # the plugin is registered through its entry point
# Plugins these subprocess runs do not use, left out to start faster.
LEAN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:respx", "-p", "no:anyio", "-p", "no:xdist")

TEST_FILE = """
import uuid
from pocketmesh import Flow
from pocketmesh.examples import greeting

async def test_greeting_state(a2a_agent, shared_snapshot):
    reply = await a2a_agent(greeting.flows).conversation(skill="greeting").send("NAME")
    assert reply.shared == shared_snapshot
    assert {"tags": {"x", "y", "z", "w", "v"}, "run": uuid.uuid4().hex, "same": reply.task_id,
            "again": f"task {reply.task_id}"} == shared_snapshot

async def test_trace(shared_snapshot):
    result = await greeting.build_flow().run({"input": "Ann"})
    assert result.trace == shared_snapshot
"""


def test_uuids_timestamps_and_ids_become_stable_placeholders() -> None:
    task, other = uuid.uuid4(), uuid.uuid4()
    value = {
        "taskId": str(task), "runId": task.hex, "messageId": "m-17", "note": f"{other} then {task} at 2026-11-24T01:30:00.123Z",
        "created_at": 1764000000.5, "format": 3, "tags": {"b", "a"}, "__a2a_history": [1], "step": (1, "Greet", None),
        "__error": {"node": "N", "type": "ValueError", "message": "bad <x at 0x7f3a2b1c0d>", "traceback": "..."},
    }
    assert normalise(value) == {
        # Numbered in sorted-key order: "created_at" comes first, "note" meets `other` first.
        "taskId": "<uuid:2>", "runId": "<uuid:2>", "messageId": "<messageId:1>",
        "note": "<uuid:1> then <uuid:2> at <timestamp:2>", "created_at": "<timestamp:1>", "format": 3,
        "tags": ["a", "b"], "step": [1, "Greet", None],
        "__error": {"node": "N", "type": "ValueError", "message": "bad <x at <address>>"},
    }
    assert "__a2a_history" in normalise(value, keep_internal=True)


def test_the_same_state_with_other_ids_serialises_identically() -> None:
    def state() -> dict[str, object]:
        task = str(uuid.uuid4())
        return {"__a2a_task_id": task, "last": task, "seen": {"q", "r", "s"}, "userName": "Dana"}

    assert dumps(normalise(state())) == dumps(normalise(state()))


def test_a_snapshot_is_written_then_stable_across_hash_seeds_then_catches_a_change(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_state=TEST_FILE.replace("NAME", "Dana"))
    written = pytester.runpytest(*PLUGIN, "--snapshot-update")
    written.assert_outcomes(passed=2)
    written.stdout.fnmatch_lines(["*3 snapshots generated*"])
    files = sorted(p.name for p in (pytester.path / "__snapshots__" / "test_state").iterdir())
    assert files == ["test_greeting_state.1.json", "test_greeting_state.json", "test_trace.json"]
    stored = (pytester.path / "__snapshots__" / "test_state" / "test_greeting_state.1.json").read_text()
    assert '"same": "<uuid:1>"' in stored and '"again": "task <uuid:1>"' in stored and '"run": "<uuid:2>"' in stored
    assert '"v",\n    "w",\n    "x"' in stored

    # Three fresh interpreters with different hash seeds, side by side to keep the test quick.
    runs = []
    for seed in ("0", "1", "4242"):
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        runs.append(pytester.popen([sys.executable, "-m", "pytest", *PLUGIN, *LEAN, "-q"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    for run in runs:
        output = run.communicate(timeout=120)[0].decode()
        assert run.returncode == 0 and "2 passed" in output, output

    pytester.makepyfile(test_state=TEST_FILE.replace("NAME", "Dina"))
    changed = pytester.runpytest(*PLUGIN, "--color=no")
    changed.assert_outcomes(passed=1, failed=1)
    changed.stdout.fnmatch_lines(['*-   "input": "Dana",', '*+   "input": "Dina",', '*-   "userName": "Dana"', '*+   "userName": "Dina"'])


def test_float_epoch_times_become_timestamps_under_any_key() -> None:
    import time

    now = time.time()
    value = {"clock": now, "ms": now * 1000, "again": now, "created": 1700000000, "ratio": 0.5, "count": 1764000000}
    # Numbered in sorted-key order; one time reads the same wherever it is; ints under other keys stay.
    assert normalise(value) == {"again": "<timestamp:1>", "clock": "<timestamp:1>", "created": "<timestamp:2>",
                                "ms": "<timestamp:3>", "ratio": 0.5, "count": 1764000000}
