"""The recorder: a live conversation written as a scenario file that then passes as a test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import pocketmesh.examples.greeting  # noqa: F401 - loaded before pytester's in-process runs
import pocketmesh_testing.plugin  # noqa: F401
from pocketmesh_testing.conversations.recorder import main

PLUGIN: tuple[str, ...] = ()  # the plugin is registered through its entry point


def test_a_recorded_conversation_becomes_a_passing_scenario(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    out = pytester.path / "scenarios" / "greeting_recorded.yaml"
    code = main(["--agent", "pocketmesh.examples.greeting:flows", "--skill", "greeting", "--out", str(out),
                 "--turn", "Ada", "--turn", "how are you", "--turn", "bye", "--snapshot"])
    assert code == 0, capsys.readouterr().err
    document = yaml.safe_load(out.read_text())
    assert document["agent"] == "pocketmesh.examples.greeting:flows" and document["skill"] == "greeting"
    assert [(t["user"], t["expect"]["state"], t["expect"]["text"]) for t in document["turns"]] == [
        ("Ada", "input-required", "Hello, Ada! What's on your mind?"),
        ("how are you", "input-required", 'Got it: "how are you". Anything else?'),
        ("bye", "completed", "Goodbye, Ada!"),
    ]
    snapshot = out.parent / "__scenario_snapshots__" / "greeting_recorded" / "greeting-recorded.turn-3.json"
    assert json.loads(snapshot.read_text()) == {"input": "bye", "userName": "Ada"}
    assert "agent [completed]: Goodbye, Ada!" in capsys.readouterr().err
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_turns_are_read_from_stdin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Bo\n\nbye\n"))
    out = Path(pytester.path / "scenarios" / "stdin.yaml")
    assert main(["--agent", "pocketmesh.examples.greeting:flows", "--out", str(out)]) == 0
    assert [t["user"] for t in yaml.safe_load(out.read_text())["turns"]] == ["Bo", "bye"]


def test_an_unreachable_agent_is_reported_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--agent", "pocketmesh.examples.greeting:nothing", "--turn", "hi", "--out", str(tmp_path / "x.yaml")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("recorder: AttributeError:") and "Traceback" not in err
    assert not (tmp_path / "x.yaml").exists()
