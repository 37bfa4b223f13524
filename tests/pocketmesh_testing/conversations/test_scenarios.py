"""Scenario files collected and played by pytest, in-process and against `pocketmesh serve`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

# Imported here so pytester's in-process runs find them loaded instead of importing them anew.
import pocketmesh.examples.greeting  # noqa: F401
import pocketmesh.examples.llm  # noqa: F401
import pocketmesh_testing.plugin  # noqa: F401
from pocketmesh_testing.demo import run_main_job
from pocketmesh_testing.conversations.format import ScenarioFormatError, load_scenarios

PLUGIN: tuple[str, ...] = ()  # the plugin is registered through its entry point
SHIPPED = Path(__file__).resolve().parents[3] / "scenarios"

GREETING = """\
agent: pocketmesh.examples.greeting:flows
skill: greeting
scenarios:
  - name: greets and says goodbye
    turns:
      - user: Dana
        expect:
          state: input-required
          text: "Hello, Dana! What's on your mind?"
          shared: {userName: Dana}
      - user: bye
        expect:
          state: completed
          text: {contains: Goodbye}
"""

STREAMING = """\
agent: pocketmesh.examples.llm:flows
skill: stream
scenarios:
  - name: streams the scripted tokens
    turns:
      - user: Say hi
        llm:
          - stream: ["Hi ", "there"]
        expect:
          state: completed
          text: "Hi there"
"""


def write(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / "scenarios" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_scenario_file_passes(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING)
    result = pytester.runpytest(*PLUGIN, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["scenarios/greeting.yaml::greets and says goodbye PASSED*"])


def test_a_wrong_expectation_fails_with_the_transcript_and_the_mismatch(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING.replace("{contains: Goodbye}", "{contains: Farewell}"))
    result = pytester.runpytest(*PLUGIN, "--color=no")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "scenario 'greets and says goodbye' against pocketmesh.examples.greeting:flows (in-process), skill greeting",
        "  turn 1",
        "    user: Dana",
        "    agent [[]input-required]: Hello, Dana! What's on your mind?",
        "  turn 2",
        "    user: bye",
        "    agent [[]completed]: Goodbye, Dana!",
        "mismatch at turn 2, expect.text (scenarios/greeting.yaml:14): does not contain 'Farewell'",
        "  - expected",
        "  + actual",
        "  - Farewell",
        "  + Goodbye, Dana!",
    ])
    assert "Traceback" not in result.stdout.str() and "\x1b[" not in result.stdout.str()


def test_mismatches_are_coloured_when_pytest_colours(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING.replace("state: completed", "state: failed"))
    result = pytester.runpytest(*PLUGIN, "--color=yes")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "\x1b[31m- failed\x1b[0m" in out and "\x1b[32m+ completed\x1b[0m" in out


def test_a_shared_state_mismatch_names_the_key(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING.replace("{userName: Dana}", "{userName: Dan}"))
    result = pytester.runpytest(*PLUGIN, "--color=no")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["mismatch at turn 1, expect.shared (*:10): shared[[]'userName'[]] differs", "  - Dan", "  + Dana"])


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GREETING.replace("state: completed", "state: complete"),
         "scenarios/bad.yaml:13: scenarios[0].turns[1].expect.state: 'complete' is not one of *did you mean 'completed'?"),
        (GREETING.replace("state: completed", "stat: completed"),
         "scenarios/bad.yaml:13: scenarios[0].turns[1].expect.stat: unknown key 'stat'; did you mean 'state'?*"),
        (GREETING.replace("      - user: bye\n", "      - usr: bye\n"),
         "scenarios/bad.yaml:11: scenarios[0].turns[1].usr: unknown key 'usr'; did you mean 'user'?*"),
        (GREETING.replace("{contains: Goodbye}", "{regex: 'Good(bye'}"),
         "scenarios/bad.yaml:14: scenarios[0].turns[1].expect.text.regex: bad regular expression*"),
        (GREETING + "  - name: greets and says goodbye\n    turns: [{user: x}]\n",
         "scenarios/bad.yaml:15: scenarios[1].name: two scenarios are named 'greets and says goodbye'*"),
        ("agent: x:y\nturns:\n  - user: [unclosed\n", "scenarios/bad.yaml:4: (file): not valid YAML: *"),
    ],
    ids=["enum", "unknown-key", "turn-key", "regex", "duplicate", "yaml-syntax"],
)
def test_a_malformed_file_is_one_clear_error(pytester: pytest.Pytester, text: str, where: str) -> None:
    write(pytester, "bad.yaml", text)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/bad.yaml*", "invalid scenario file " + where.replace("[", "[[]")])
    assert "Traceback" not in result.stdout.str()


def test_yaml_outside_the_scenario_dirs_and_in_cassettes_is_not_collected(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING)
    (pytester.path / "config.yaml").write_text("not: a scenario\n")
    (pytester.path / "scenarios" / "cassettes").mkdir()
    (pytester.path / "scenarios" / "cassettes" / "x.yaml").write_text("interactions: []\n")
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_scripted_llm_replies_drive_the_agent_per_turn(pytester: pytest.Pytester) -> None:
    write(pytester, "llm.yaml", """\
agent: pocketmesh.examples.llm:flows
skill: stream
turns:
  - user: hi
    stream: true
    llm: [{stream: ["a", "b"]}]
    expect: {state: completed, chunks: ["a", "b"], text: ab}
  - user: unused
    expect: {error: {contains: "terminal state"}}
""")
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_an_unused_llm_reply_fails_the_turn(pytester: pytest.Pytester) -> None:
    write(pytester, "llm.yaml", """\
agent: pocketmesh.examples.llm:flows
skill: stream
turns:
  - user: hi
    llm: ["one", "two"]
    expect: {state: completed}
""")
    result = pytester.runpytest(*PLUGIN, "--color=no")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["mismatch at turn 1, llm (*:4): scripted LLM replies never requested in this turn: reply('two')"])


def test_the_shipped_scenarios_are_valid() -> None:
    files = sorted(SHIPPED.glob("*.yaml"))
    assert len(files) >= 6
    for path in files:
        assert load_scenarios(path)


def test_the_format_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("agent: a:b\nturns:\n  - user: hi\n    expect: {state: 3}\n")
    with pytest.raises(ScenarioFormatError) as caught:
        load_scenarios(path)
    assert (caught.value.line, caught.value.field) == (4, "turns[0].expect.state")


def test_the_same_scenario_passes_in_process_and_against_pocketmesh_serve(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(pytester, "greeting.yaml", GREETING)
    write(pytester, "streaming.yaml", STREAMING)
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=2)
    monkeypatch.chdir(pytester.path)
    out = io.StringIO()
    code = run_main_job(db=pytester.path / "live.sqlite", out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "pocketmesh.examples.greeting:flows -> http://127.0.0.1:" in text
    assert "scenarios/greeting.yaml::greets and says goodbye: PASSED" in text
    assert "agent [completed]: Goodbye, Dana!" in text
    # the live server's openai client reached the scenario's fake LLM on the agreed port
    assert "scenarios/streaming.yaml::streams the scripted tokens: PASSED" in text
    assert "agent [completed]: Hi there" in text
    assert "pocketmesh demo: PASS - 2 scenario(s) against 2 live agent(s)" in text
