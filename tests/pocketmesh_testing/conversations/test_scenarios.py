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
        (GREETING.replace("      - user: bye\n", "      - user: bye\n        llm: [{txt: so long}]\n"),
         "scenarios/bad.yaml:12: scenarios[0].turns[1].llm[0]: got {'txt': 'so long'}; expected a string (the reply "
         "text), {text: ...}, {stream: [chunk, ...]}, {fail: HTTP status, message: ...} or {tool_call: {name: ..., "
         "arguments: {...}}}."),
    ],
    ids=["enum", "unknown-key", "turn-key", "regex", "duplicate", "yaml-syntax", "llm-entry"],
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
    write(pytester, "levels.yaml", "levels: [{name: moat}]\n")  # not a scenario: neither run nor played
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


def test_only_scenario_files_are_collected_from_the_scenario_dirs(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING)
    write(pytester, "levels.yaml", "scenarios:\n  - {name: siege, map: castle}\n")  # a game's own scenarios
    write(pytester, "moves.yaml", "turns:\n  - {player: 1, move: e4}\n")
    write(pytester, "notes.yaml", "title: [broken YAML that is none of ours\n")
    write(pytester, "typo.yaml", GREETING.replace("      - user: bye\n", "      - usr: bye\n"))  # ours, with a typo
    result = pytester.runpytest(*PLUGIN, "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/typo.yaml*"])
    assert "levels.yaml" not in result.stdout.str() and "moves.yaml" not in result.stdout.str()


def test_an_empty_scenario_dirs_setting_turns_collection_off(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\npocketmesh_scenario_dirs =\n")
    result = pytester.runpytest(*PLUGIN)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\npocketmesh_scenario_dirs = scenarios\n")
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


BROKEN_AGENT = """\
agent: support_agent:flows
skill: support
scenarios:
  - name: answers
    turns:
      - user: hi
        expect: {state: completed}
  - name: answers again
    turns:
      - user: hello
        expect: {state: completed}
"""


@pytest.mark.parametrize(
    ("modules", "problem", "where"),
    [
        ({"support_agent": "import json\nimport vendor_sdk_that_is_not_installed\nflows = {}\n"},
         "ModuleNotFoundError: No module named 'vendor_sdk_that_is_not_installed'",
         "  support_agent.py:2: import vendor_sdk_that_is_not_installed"),
        ({"support_agent": "from support_settings import TIMEOUT\nflows = {}\n",
          "support_settings": "import os\nTIMEOUT = int(os.environ.get('SUPPORT_TIMEOUT', 'ten'))\n"},
         "ValueError: invalid literal for int() with base 10: 'ten'",
         "  support_settings.py:2: TIMEOUT = int(os.environ.get('SUPPORT_TIMEOUT', 'ten'))"),
        ({"support_agent": "flows = {\n"}, "SyntaxError: *", "  support_agent.py:1: flows = {"),
        ({"support_agent": "import json\nSETTINGS = json.loads('{not json')\nflows = {}\n"},
         "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
         "  support_agent.py:2: SETTINGS = json.loads('{not json')"),
    ],
    ids=["missing-dependency", "error-while-importing", "syntax-error", "raised-in-the-standard-library"],
)
def test_an_agent_that_fails_to_import_is_one_short_error(
    pytester: pytest.Pytester, modules: dict[str, str], problem: str, where: str
) -> None:
    pytester.makepyfile(**modules)
    write(pytester, "support.yaml", BROKEN_AGENT)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(errors=1)  # one for the file, not one per scenario
    result.stdout.fnmatch_lines([
        "*ERROR collecting scenarios/support.yaml*",
        "scenarios/support.yaml:1: agent: cannot import the agent 'support_agent:flows': " + problem.replace("[", "[[]"),
        where.replace("[", "[[]"),
    ])
    assert len(result.outlines) < 60, "\n".join(result.outlines)
    assert "Traceback" not in result.stdout.str() and "importlib" not in result.stdout.str()
    # Only the project's own lines: the standard library's frames (json/decoder.py) are left out.
    shown = [line for line in result.outlines if line.startswith("  ") and ".py:" in line]
    assert shown[-1] == where and all(line.startswith("  support_") for line in shown), "\n".join(result.outlines)


def test_the_real_cause_wins_over_replies_left_unused(pytester: pytest.Pytester) -> None:
    write(pytester, "llm.yaml", STREAMING.replace("skill: stream", "skill: strem"))  # a typo in the skill
    result = pytester.runpytest(*PLUGIN, "--color=no")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["mismatch at turn 1, send (*): the agent did not answer: *strem*"])
    assert "never requested" not in result.stdout.str()


REPORT_AGENT = """
from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode


class Report(A2ABaseNode):
    async def execute(self, prep, shared, params, attempt):
        for word in ("Rivers ", "rise."):
            await self.emit_artifact({"artifactId": "words", "name": "words", "parts": [self.create_text_part(word)]})
        await self.emit_artifact({"artifactId": "totals", "name": "totals",
                                  "parts": [self.create_data_part({"rivers": 3, "gauges": {"ok": 2, "down": 1}})]})
        await self.emit_artifact({"artifactId": "words", "name": "words", "parts": [self.create_text_part(" Done.")]})

    async def finalize(self, shared, prep, result, params):
        self.set_final_response_parts(shared, [self.create_text_part("report ready")])
        return "complete"


flows = {"report": Flow(Report(), name="Report")}
"""

REPORT = """\
agent: report_agent:flows
turns:
  - user: report
    stream: true
    expect:
      state: completed
      artifacts:
        - {name: words, text: "Rivers rise. Done."}
        - {name: totals, data: {gauges: {down: 1}}}
      artifact_text: {contains: '{"gauges": {"down": 1, "ok": 2}, "rivers": 3}'}
      chunks: {artifact: words, equals: ["Rivers ", "rise.", " Done."]}
"""


def test_data_artifacts_read_as_json_and_can_be_asserted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(report_agent=REPORT_AGENT)
    write(pytester, "report.yaml", REPORT)
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)
    # every chunk, the data one as JSON
    write(pytester, "report.yaml", REPORT.replace(
        'chunks: {artifact: words, equals: ["Rivers ", "rise.", " Done."]}',
        'chunks: ["Rivers ", "rise.", \'{"gauges": {"down": 1, "ok": 2}, "rivers": 3}\', " Done."]'))
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)
    write(pytester, "report.yaml", REPORT.replace("{down: 1}", "{down: 0}"))
    result = pytester.runpytest(*PLUGIN, "--color=no")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["mismatch at turn 1, expect.artifacts[[]1].data (*): data[[]'gauges'[]][[]'down'[]] differs",
                                 "  - 0", "  + 1"])


OTHER_YAML = {
    # a game's scenarios: `turns` is a number, not a list of turns
    "siege.yaml": "scenarios:\n  - {name: Siege of the Keep, turns: 20, map: keep.tmx}\n",
    # an NPC file whose `agent` happens to look like module:attr, with turns that are numbers
    "npc.yaml": "agent: npc:guard\nturns: [1, 2, 3]\n",
    "round.yaml": "agent: npc:guard\nturns:\n  - {player: 1, move: e4}\n",
    "plays.yaml": "scenarios:\n  - {name: opening, turns: [e4, e5]}\n",
    "party.yaml": "simulations:\n  - {name: party, guests: 20}\n",
}


def test_other_yaml_shaped_a_little_like_scenarios_is_left_alone(pytester: pytest.Pytester) -> None:
    write(pytester, "greeting.yaml", GREETING)
    for name, text in OTHER_YAML.items():
        write(pytester, name, text)
    write(pytester, "typo.yaml", GREETING.replace("      - user: bye\n", "      - usr: bye\n"))  # ours, with a typo
    write(pytester, "one.yaml", "turns:\n  - user: hi\n    expect: {state: compleet}\n")  # ours, one bad turn
    result = pytester.runpytest(*PLUGIN, "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/one.yaml*", "*ERROR collecting scenarios/typo.yaml*"])
    for name in OTHER_YAML:
        assert name not in result.stdout.str()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        # scenarios[0] is bad deep inside, scenarios[1] at its top: the first one is named
        (GREETING.replace("state: completed", "state: complete")
         + "  - name: second\n    turns: [{user: x}]\n    colour: red\n", "scenarios[0].turns[1].expect.state"),
        ("turns:\n  - user: a\n    expect: {text: {regex: 1}}\n  - user: b\n  - user: c\n    colour: red\n",
         "turns[0].expect.text.regex"),
        ("turns:\n  - user: a\n  - user: b\n    expect: {state: nope}\n  - usr: c\n", "turns[1].expect.state"),
    ],
    ids=["scenarios", "turns", "later-turn"],
)
def test_the_format_error_names_the_first_bad_entry(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioFormatError) as caught:
        load_scenarios(path)
    assert caught.value.field == field, str(caught.value)


def test_fake_llm_replies_against_a_live_agent_skip_saying_how_to_play_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The agent URL is never contacted: a live agent cannot see replies scripted in this
    # process unless it was started against the fake LLM's port.
    monkeypatch.delenv("POCKETMESH_FAKE_LLM_PORT", raising=False)
    pytester.makefile(".yaml", **{"scenarios/llm_live": (SHIPPED / "llm_decision.yaml").read_text()})
    result = pytester.runpytest_inprocess("scenarios", "-rs", "--pocketmesh-agent-url", "http://agent.invalid:9/", *PLUGIN)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*scripts fake LLM replies, which the live agent at http://agent.invalid:9/ cannot see*POCKETMESH_FAKE_LLM_PORT=PORT*"])
