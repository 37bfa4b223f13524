"""Simulations in scenario files: recorded once against a model, replayed offline and exactly.

The model is :class:`ScriptedModel`, an OpenAI-compatible server on loopback playing the user
and the judge from scripts; after recording it is stopped, and the replay runs with ``CI`` set,
no endpoint and no key.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import pocketmesh.examples.greeting  # noqa: F401  (loaded once, not per pytester run)
import pocketmesh.examples.llm  # noqa: F401
from pocketmesh_testing.conversations.simulation_file import load_simulations
from pocketmesh_testing.demo import run_main_job
from pocketmesh_testing.properties import gate

from .scripted_model import GREETING_RULES, GREETING_SIMULATION, GREETING_USER, ROOT, Rule, ScriptedModel

VISIT = """\
agent: pocketmesh.examples.greeting:flows
skill: greeting
scenarios:
  - name: greets by name
    turns:
      - user: Dana
        expect: {state: input-required}
simulations:
  - name: a visitor chats and leaves
    persona: Dana, a first-time visitor who writes short sentences.
    goal: Get greeted by name, mention a plan, then say goodbye.
    first_message: Dana
    max_turns: 4
    criteria:
      - The agent greets the user by name.
      - The agent says goodbye using the user's name.
    expect: {state: completed, text: "Goodbye, Dana!"}
"""
CASSETTE = Path("scenarios/cassettes/visit/a-visitor-chats-and-leaves.yaml")
RULES = {
    "The agent greets the user by name.": Rule("agent: Hello, Dana!", "It answered \"Hello, Dana!\".", "No greeting by name."),
    "The agent says goodbye using the user's name.": Rule("agent: Goodbye, Dana!", "It said \"Goodbye, Dana!\".",
                                                          "The goodbye does not name Dana."),
}


def write(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / "scenarios" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModel]:
    """A scripted model the simulations reach through ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``."""
    served = ScriptedModel(["I'm planning a picnic.", "bye"], RULES)
    monkeypatch.setenv("OPENAI_BASE_URL", served.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", served.api_key)
    yield served
    served.close()


def go_offline(model: ScriptedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the model and forget where it was: only the cassette can answer now."""
    model.close()
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("CI", "true")


VISIT_TRANSCRIPT = [
    "scenarios/visit.yaml::a visitor chats and leaves: PASSED",
    "  persona: Dana, a first-time visitor who writes short sentences.",
    "  goal: Get greeted by name, mention a plan, then say goodbye.",
    "  turn 1",
    "    user: Dana",
    "    agent [[]input-required]: Hello, Dana! What's on your mind?",
    "  turn 2",
    "    user: I'm planning a picnic.",
    "    agent [[]input-required]: Got it: \"I'm planning a picnic.\". Anything else?",
    "  turn 3",
    "    user: bye",
    "    agent [[]completed]: Goodbye, Dana!",
    "  ended by agent-final after 3 user message(s)",
    "  verdicts: 2 of 2 criteria met",
    "    PASS The agent greets the user by name.",
    "         It answered \"Hello, Dana!\".",
    "    PASS The agent says goodbye using the user's name.",
    "         It said \"Goodbye, Dana!\".",
]


def test_a_simulation_records_against_a_model_then_replays_offline_and_exactly(
    pytester: pytest.Pytester, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(pytester, "visit.yaml", VISIT)
    result = pytester.runpytest("-v", "--color=no", "--pocketmesh-transcripts")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(VISIT_TRANSCRIPT)
    assert [role for role, _ in model.requests] == ["user", "user", "judge"]
    cassette = pytester.path / CASSETTE
    text = cassette.read_text()
    assert model.api_key not in text and "authorization" not in text.lower()  # the secret never reached the file
    assert text.count("uri: https://simulation.pocketmesh.invalid/v1/chat/completions") == 3

    go_offline(model, monkeypatch)
    for _ in range(2):  # the same conversation and the same verdicts, every time
        replay = pytester.runpytest("-v", "--color=no", "--pocketmesh-transcripts")
        replay.assert_outcomes(passed=2)
        replay.stdout.fnmatch_lines(VISIT_TRANSCRIPT)
    assert cassette.read_text() == text
    assert len(model.requests) == 3

    # Replay is exact: a different conversation is a miss naming the closest recorded request.
    write(pytester, "visit.yaml", VISIT.replace("first_message: Dana", "first_message: Dan"))
    missed = pytester.runpytest("--color=no")
    missed.assert_outcomes(failed=1, passed=1)
    missed.stdout.fnmatch_lines([
        "    user: Dan",
        "simulation could not finish: the simulated user's model call was not in the cassette: cassette * "
        "(record mode 'none', 3 interaction(s)) has no recorded response for POST "
        "https://simulation.pocketmesh.invalid/v1/chat/completions*Closest recorded request (#1)*body $.messages[[]1[]].content*",
    ])
    assert "Traceback" not in missed.stdout.str()


def test_a_failed_criterion_shows_it_with_the_reason_and_the_transcript(
    pytester: pytest.Pytester, model: ScriptedModel
) -> None:
    model.rules = {**RULES, "The agent says goodbye using the user's name.": Rule(
        "agent: Goodbye, Dana! See you", "", "It said \"Goodbye, Dana!\" but never \"See you\".")}
    write(pytester, "visit.yaml", VISIT)
    result = pytester.runpytest("--color=no", "-rf")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "simulation 'a visitor chats and leaves' against pocketmesh.examples.greeting:flows (in-process), skill greeting",
        "  persona: Dana, a first-time visitor who writes short sentences.",
        "  turn 1",
        "    user: Dana",
        "  turn 3",
        "    user: bye",
        "    agent [[]completed]: Goodbye, Dana!",
        "  ended by agent-final after 3 user message(s)",
        "  verdicts: 1 of 2 criteria met",
        "    PASS The agent greets the user by name.",
        "    FAIL The agent says goodbye using the user's name.",
        "criterion not met (scenarios/visit.yaml:16): The agent says goodbye using the user's name.",
        "  reason: It said \"Goodbye, Dana!\" but never \"See you\".",
        "FAILED scenarios/visit.yaml::a visitor chats and leaves - 1 of 2 criteria not*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_the_final_reply_is_checked_like_a_turn(pytester: pytest.Pytester, model: ScriptedModel) -> None:
    write(pytester, "visit.yaml", VISIT.replace('text: "Goodbye, Dana!"', 'text: "Bye, Dana!"'))
    result = pytester.runpytest("--color=no")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "  ended by agent-final after 3 user message(s)",
        "mismatch at turn 3, expect.text (scenarios/visit.yaml:17): text differs",
        "  - Bye, Dana!",
        "  + Goodbye, Dana!",
    ])


ENDINGS = """\
agent: pocketmesh.examples.greeting:flows
skill: greeting
cassette: cassettes/endings.yaml
simulations:
  - name: keeps chatting
    persona: A chatty visitor.
    goal: Keep the conversation going.
    first_message: Dana
    max_turns: 2
    expect: {state: input-required}
  - name: leaves once greeted
    persona: Lee, in a hurry.
    goal: Be greeted, then stop.
    expect: {state: input-required, text: "Hello, Lee! What's on your mind?"}
"""


def test_max_turns_and_user_done_endings_share_one_cassette(
    pytester: pytest.Pytester, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model.user_lines = ["tell me more", "Lee"]
    write(pytester, "endings.yaml", ENDINGS)
    expected = [
        "scenarios/endings.yaml::keeps chatting: PASSED",
        "    user: tell me more",
        "  ended by max-turns after 2 user message(s)",
        "  no criteria: nothing judged",
        "scenarios/endings.yaml::leaves once greeted: PASSED",
        "    user: Lee",
        "    agent [[]input-required]: Hello, Lee! What's on your mind?",
        "  ended by user-done after 1 user message(s)",
    ]
    result = pytester.runpytest("--color=no", "--pocketmesh-transcripts")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(expected)
    assert [role for role, _ in model.requests] == ["user", "user", "user"]  # no criteria: no judge
    go_offline(model, monkeypatch)
    replay = pytester.runpytest("--color=no", "--pocketmesh-transcripts")
    replay.assert_outcomes(passed=2)
    replay.stdout.fnmatch_lines(expected)


def test_a_malformed_judge_answer_fails_cleanly(pytester: pytest.Pytester, model: ScriptedModel) -> None:
    model.judge_answer = "The agent did fine on both."
    write(pytester, "visit.yaml", VISIT)
    result = pytester.runpytest("--color=no")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "    user: bye",
        "    agent: Goodbye, Dana!",
        "simulation could not finish: the judge's answer is not JSON (Expecting value at character 0): got "
        "'The agent did fine on both.'; expected a JSON object {\"verdicts\": *",
    ])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("    persona: Dana, a first-time visitor who writes short sentences.\n", "",
         "scenarios/bad.yaml:9: simulations[[]0[]]: 'persona' is a required property."),
        ("    criteria:\n", "    critera:\n",
         "scenarios/bad.yaml:14: simulations[[]0[]].critera: unknown key 'critera'; did you mean 'criteria'?*"),
        ("max_turns: 4", "max_turns: 0", "scenarios/bad.yaml:13: simulations[[]0[]].max_turns: 0 is less than the minimum of 1"),
        ("  - name: a visitor chats and leaves", "  - name: greets by name",
         "scenarios/bad.yaml:9: simulations[[]0[]].name: 'greets by name' already names an entry on line 4; *"),
        ('expect: {state: completed, text: "Goodbye, Dana!"}', "expect: {chunks: [a]}",
         "scenarios/bad.yaml:17: simulations[[]0[]].expect.chunks: `chunks` checks one scripted turn; *"),
        ('text: "Goodbye, Dana!"', "text: {regex: 'Good(bye'}",
         "scenarios/bad.yaml:17: simulations[[]0[]].expect.text.regex: bad regular expression*"),
    ],
    ids=["missing-persona", "unknown-key", "max-turns", "duplicate-name", "chunks", "regex"],
)
def test_a_malformed_simulation_is_one_clear_error(pytester: pytest.Pytester, old: str, new: str, where: str) -> None:
    assert old in VISIT
    write(pytester, "bad.yaml", VISIT.replace(old, new))
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/bad.yaml*", "invalid scenario file " + where])
    assert "Traceback" not in result.stdout.str()


def test_a_file_of_simulations_only_loads(tmp_path: Path) -> None:
    path = tmp_path / "only.yaml"
    path.write_text(VISIT.split("scenarios:\n")[0] + "simulations:" + VISIT.split("simulations:")[1])
    (spec,) = load_simulations(path)
    assert (spec.name, spec.max_turns, spec.first_message, spec.skill) == ("a visitor chats and leaves", 4, "Dana", "greeting")
    assert spec.cassette_path == tmp_path / "cassettes" / "only" / "a-visitor-chats-and-leaves.yaml"
    assert spec.lines["criteria[1]"] == 11 and spec.lines["expect.text"] == 12


ASSISTANT = """\
agent: pocketmesh.examples.llm:flows
skill: assistant
simulations:
  - name: asks for a summary
    persona: A busy reader.
    goal: Get a one-line summary.
    first_message: "Please summarize: rivers carry water to the sea."
    criteria: [The agent answers with a summary.]
    expect: {state: completed, text: "Rivers flow seaward."}
"""


def test_the_agents_fake_llm_and_the_simulators_cassette_are_kept_apart(
    pytester: pytest.Pytester, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model.rules = {"The agent answers with a summary.": Rule("agent: Rivers flow seaward.", "It summarised.", "")}
    write(pytester, "assistant.yaml", ASSISTANT.replace(
        "    criteria:", '    llm: [summarize, {stream: ["Rivers ", "flow seaward."]}]\n    criteria:'))
    pytester.runpytest().assert_outcomes(passed=1)
    assert [role for role, _ in model.requests] == ["judge"]  # the agent's calls went to its fake
    text = (pytester.path / "scenarios/cassettes/assistant/asks-for-a-summary.yaml").read_text()
    assert text.count("uri:") == 1 and "x-pocketmesh-simulation" in text
    go_offline(model, monkeypatch)
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_agents_own_model_traffic_shares_the_cassette_with_the_simulator(
    pytester: pytest.Pytester, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model.rules = {"The agent answers with a summary.": Rule("agent: Rivers flow seaward.", "It summarised.", "")}
    model.agent_replies = ["summarize", ["Rivers ", "flow seaward."]]
    write(pytester, "assistant.yaml", ASSISTANT)
    pytester.runpytest().assert_outcomes(passed=1)
    assert [role for role, _ in model.requests] == ["agent", "agent", "judge"]
    text = (pytester.path / "scenarios/cassettes/assistant/asks-for-a-summary.yaml").read_text()
    assert text.count("uri: http://127.0.0.1:") == 2 and text.count("uri: https://simulation.pocketmesh.invalid") == 1
    assert model.api_key not in text
    go_offline(model, monkeypatch)
    # The agent still needs a base URL on loopback (its calls were recorded there); nothing listens on it.
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_recorded_simulation_plays_against_the_live_agent_in_the_demo(
    pytester: pytest.Pytester, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(pytester, "visit.yaml", VISIT)
    pytester.runpytest().assert_outcomes(passed=2)
    go_offline(model, monkeypatch)
    monkeypatch.chdir(pytester.path)
    out = io.StringIO()
    code = run_main_job(db=pytester.path / "live.sqlite", out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "pocketmesh.examples.greeting:flows -> http://127.0.0.1:" in text
    assert "scenarios/visit.yaml::a visitor chats and leaves: PASSED" in text
    assert "    agent [completed]: Goodbye, Dana!" in text
    assert "    PASS The agent says goodbye using the user's name." in text
    assert "pocketmesh demo: PASS - 1 scenario(s) and 1 simulation(s) against 1 live agent(s)" in text
    assert len(model.requests) == 3  # the demo asked no model


def test_the_gate_counts_simulations(pytester: pytest.Pytester, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    write(pytester, "visit.yaml", VISIT)
    pytester.runpytest().assert_outcomes(passed=2)
    go_offline(model, monkeypatch)
    monkeypatch.chdir(pytester.path)
    status = gate.main(["scenarios", "--report-md", "gate.md", "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "tests: 2 passed" in out and "  of which simulations: 1 passed" in out
    assert "Simulations: 1 passed" in (pytester.path / "gate.md").read_text()


def test_the_shipped_simulation_is_what_the_scripted_model_records_and_replays_offline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = ROOT / "scenarios" / "cassettes" / "greeting" / "a-visitor-introduces-themselves-chats-and-leaves.yaml"
    write(pytester, "greeting.yaml", (ROOT / "scenarios" / "greeting.yaml").read_text())
    node = f"scenarios/greeting.yaml::{GREETING_SIMULATION}"
    scripted = ScriptedModel(list(GREETING_USER), GREETING_RULES)
    monkeypatch.setenv("OPENAI_BASE_URL", scripted.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", scripted.api_key)
    pytester.runpytest(node).assert_outcomes(passed=1)
    go_offline(scripted, monkeypatch)
    recorded = pytester.path / "scenarios" / "cassettes" / "greeting" / shipped.name
    assert _exchanges(recorded) == _exchanges(shipped)

    shutil.copy(shipped, recorded)
    result = pytester.runpytest(node, "--pocketmesh-transcripts")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  verdicts: 3 of 3 criteria met"])


def _exchanges(path: Path) -> list[tuple[str, str, str]]:
    """What a cassette says was asked and answered (headers such as dates left out)."""
    import json

    import yaml

    data = yaml.safe_load(path.read_text())
    return [(i["request"]["uri"], i["request"]["body"],
             json.loads(i["response"]["body"]["string"])["choices"][0]["message"]["content"])
            for i in data["interactions"]]


def test_the_readme_example_records_then_replays(pytester: pytest.Pytester, model: ScriptedModel,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Simulated users and judges"):]
    example = section[section.index("```python\n") + 10:section.index("```\n", section.index("```python\n"))]
    pytester.makepyfile(test_readme=example)
    model.user_lines = ["I'm planning a picnic.", "bye"]
    model.rules = {
        "The agent greets the user by the name they gave.": Rule("agent: Hello, Dana!", "Greeted by name.", ""),
        "The agent says goodbye using the user's name.": Rule("agent: Goodbye, Dana!", "Said goodbye by name.", ""),
    }
    pytester.runpytest().assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes" / "test_readme" / "test_a_visitor_is_greeted_and_leaves.yaml"
    assert model.api_key not in cassette.read_text()
    go_offline(model, monkeypatch)
    pytester.runpytest().assert_outcomes(passed=1)
    assert [role for role, _ in model.requests] == ["user", "user", "judge"]


@pytest.fixture
def live_greeting(tmp_path: Path) -> Iterator[str]:
    """``pocketmesh serve`` of the greeting example in a subprocess; its base URL."""
    import subprocess
    import sys
    import time

    import httpx

    from pocketmesh_testing.doubles.loopback import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pocketmesh.cli", "serve", "pocketmesh.examples.greeting:flows", "--port", str(port),
         "--db", str(tmp_path / "live.sqlite")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/.well-known/agent-card.json", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, "pocketmesh serve exited"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_simulate_drives_a_live_agent_and_its_cassette_holds_only_model_traffic(
    pytester: pytest.Pytester, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch, live_greeting: str
) -> None:
    monkeypatch.setenv("AGENT_URL", live_greeting)
    pytester.makepyfile(test_live='''
import os

import pytest

from pocketmesh_testing.simulation import simulate


@pytest.mark.llm_cassette
async def test_live(remote_agent):
    result = await simulate(remote_agent(os.environ["AGENT_URL"]).conversation(skill="greeting"),
                            persona="Dana", goal="be greeted, then leave", first_message="Dana",
                            criteria=["The agent greets the user by name."])
    result.assert_passed()
    assert (result.ended_by, result.turns, result.final.text) == ("agent-final", 3, "Goodbye, Dana!")
''')
    model.rules = {"The agent greets the user by name.": Rule("agent: Hello, Dana!", "Greeted by name.", "")}
    pytester.runpytest().assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_live" / "test_live.yaml").read_text()
    assert text.count("uri:") == 3 and live_greeting not in text  # the A2A conversation is not model traffic
    go_offline(model, monkeypatch)
    pytester.runpytest().assert_outcomes(passed=1)  # the live agent answers again; the model replays
