"""The recorder: a live conversation written as a scenario file that then passes as a test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


ECHO_AGENT = '''
import openai
from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode


class Echo(A2ABaseNode):
    async def execute(self, prep, shared, params, attempt):
        client = openai.AsyncOpenAI(max_retries=0)  # the model, from OPENAI_BASE_URL
        answer = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": shared["input"]}])
        return answer.choices[0].message.content

    async def finalize(self, shared, prep, text, params):
        self.set_final_response_parts(shared, [self.create_text_part(text)])
        return "complete"


flows = {"echo": Flow(Echo(), name="Echo")}
'''


def test_the_model_traffic_is_recorded_so_the_scenario_replays_offline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pocketmesh_testing.doubles.llm_replies import TextReply, render
    from pocketmesh_testing.doubles.loopback import LoopbackServer

    def model(method: str, path: str, headers: Any, body: bytes) -> Any:
        asked = json.loads(body)["messages"][-1]["content"]
        return render(TextReply(f"echo: {asked}"), dialect="openai", model="m", stream=False)

    pytester.makepyfile(echo_agent=ECHO_AGENT)
    upstream = LoopbackServer(model)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-key-never-written")
    out = pytester.path / "scenarios" / "echo.yaml"
    try:
        code = main(["--agent", "echo_agent:flows", "--turn", "hello", "--out", str(out)])
    finally:
        upstream.close()
    assert code == 0, capsys.readouterr().err
    document = yaml.safe_load(out.read_text())
    assert document["cassette"] == "cassettes/echo/echo.yaml"
    assert document["turns"][0]["expect"] == {"state": "completed", "text": "echo: hello"}
    cassette = (out.parent / document["cassette"]).read_text()
    assert "echo: hello" in cassette and "sk-live-key-never-written" not in cassette
    assert "pocketmesh-agent.test" not in cassette  # the conversation itself is not model traffic

    # Offline: the model is gone (nothing listens on that port now), the cassette answers.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    pytester.runpytest(*PLUGIN, "--pocketmesh-record-mode=none").assert_outcomes(passed=1)
    # A turn the cassette never heard fails with the miss as the scenario's own message.
    recorded = out.read_text()
    out.write_text(recorded.replace("user: hello", "user: hullo"))
    missed = pytester.runpytest(*PLUGIN, "--pocketmesh-record-mode=none", "--color=no")
    missed.assert_outcomes(failed=1)
    missed.stdout.fnmatch_lines(["    user: hullo", "CassetteMissError: cassette *echo.yaml (record mode 'none'*"
                                 "It differs in body $.messages[[]0].content: recorded 'hello' != sent 'hullo'*",
                                 "The scenario then failed at turn 1, *"])
    out.write_text(recorded.replace("cassette: cassettes/echo/echo.yaml\n", ""))
    pytester.runpytest(*PLUGIN, "--pocketmesh-record-mode=none").assert_outcomes(failed=1)  # without it: no model
