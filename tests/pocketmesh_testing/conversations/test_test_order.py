"""Made-up values (fake tool-call ids, response ids, times) are the same for a test whatever ran
before it: a project with snapshots of them passes in either order, under xdist and in the gate."""

from __future__ import annotations

import json
import sys

import pytest

AGENT = '''
import time

import openai
from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


class Lookup(A2ABaseNode):
    async def execute(self, prep, shared, params, attempt):
        client = openai.AsyncOpenAI(max_retries=0)
        answer = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": shared["input"]}], tools=TOOLS)
        call = answer.choices[0].message.tool_calls[0]
        return {"call_id": call.id, "tool": call.function.name, "completion": answer.id, "created": answer.created}

    async def finalize(self, shared, prep, answer, params):
        shared["lookup"] = answer
        shared["clock"] = time.time()  # under no time-like key
        self.set_final_response_parts(shared, [self.create_text_part(f"looked up with {answer['tool']}")])
        return "complete"


flows = {"lookup": Flow(Lookup(), name="Lookup")}
'''

SCENARIO = """\
agent: tool_agent:flows
skill: lookup
scenarios:
  - name: looks it up with a tool
    turns:
      - user: find it
        llm:
          - tool_call: {name: lookup, arguments: {q: it}}
        expect: {state: completed, text: looked up with lookup, snapshot: true}
"""

TESTS = '''
import pytest


@pytest.mark.flow_property  # kept by the gate, which runs it before the scenario
async def test_three_tool_calls(fake_llm, shared_snapshot):
    for n in range(3):
        fake_llm.reply_tool_call("lookup", {"n": n})
    client = fake_llm.openai_client()
    seen = []
    for n in range(3):
        answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": str(n)}])
        seen.append({"call": answer.choices[0].message.tool_calls[0].id, "completion": answer.id,
                     "created": answer.created})
    assert seen == shared_snapshot
'''

LEAN = ("-p", "no:cacheprovider")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Tests and a scenario that both snapshot values the fake LLM made up."""
    pytester.makepyfile(tool_agent=AGENT)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_tools.py").write_text(TESTS)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "lookup.yaml").write_text(SCENARIO)
    return pytester


def write_snapshots(project: pytest.Pytester) -> None:
    # In-process runs share one interpreter, as the tests of one session do: nothing a run made
    # up may carry over into the next.
    written = project.runpytest_inprocess(*LEAN, "scenarios", "tests", "--snapshot-update")
    written.assert_outcomes(passed=2)


def test_snapshots_of_made_up_values_pass_in_either_order_and_under_xdist(project: pytest.Pytester) -> None:
    write_snapshots(project)
    stored = json.loads((project.path / "scenarios" / "__scenario_snapshots__" / "lookup"
                         / "looks-it-up-with-a-tool.turn-1.json").read_text())
    assert stored["lookup"]["call_id"] == "call_fake_1" and stored["lookup"]["completion"] == "chatcmpl-fake-2"
    assert stored["clock"].startswith("<timestamp:")  # time.time(): a float epoch, whatever its key
    assert "call_fake_1" in (project.path / "tests" / "__snapshots__" / "test_tools" / "test_three_tool_calls.json").read_text()

    project.runpytest_inprocess(*LEAN, "scenarios", "tests").assert_outcomes(passed=2)
    project.runpytest_inprocess(*LEAN, "tests", "scenarios").assert_outcomes(passed=2)
    project.runpytest_subprocess(*LEAN, "-n", "2", "tests", "scenarios").assert_outcomes(passed=2)


def test_the_gate_passes_on_a_project_with_such_snapshots(project: pytest.Pytester) -> None:
    write_snapshots(project)
    gate = project.run(sys.executable, "-m", "pocketmesh.cli", "gate", "tests", "scenarios", "--", *LEAN)
    assert gate.ret == 0, gate.stdout.str() + gate.stderr.str()
    gate.stdout.fnmatch_lines(["tests: 2 passed", "pocketmesh gate: PASS"])
