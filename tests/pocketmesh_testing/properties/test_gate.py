"""`pocketmesh gate`: passes on a covered flow-property module, fails when an edge is left untested."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from pocketmesh.diagram import UNTESTED_STYLE
from pocketmesh_testing.properties import gate
from tests.pocketmesh.test_diagram import read_mermaid

MODULE = '''
from typing import Any

import pytest
from hypothesis import settings

from pocketmesh import BaseNode, Flow
from pocketmesh_testing.properties import assert_terminates


class Route(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        return "left"


def build() -> Flow:
    route = Route()
    route - "left" >> BaseNode(name="Left")
    route - "right" >> BaseNode(name="Right")
    return Flow(route, name="Router")


@pytest.mark.flow_property
def test_router_terminates() -> None:
    assert_terminates(build(), scripted=SCRIPTED, settings=settings(max_examples=15))


def test_not_a_property() -> None:
    raise AssertionError("the gate runs only flow properties and scenarios")
'''


def write_module(directory: Path, *, scripted: bool) -> None:
    (directory / "test_router.py").write_text(textwrap.dedent(MODULE).replace("SCRIPTED", str(scripted)))


def test_gate_passes_when_every_edge_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, scripted=True)
    status = gate.main(["test_router.py", "--min-edge-coverage", "100", "--report-md", "gate.md",
                        "--junit-xml", "junit.xml", "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "Router" in out and "2/2" in out and "100.0%" in out
    report = (tmp_path / "gate.md").read_text()
    assert "Flow edge coverage: **100.0%**" in report and "**Result: PASS**" in report
    assert "```mermaid\nflowchart TD\n" in report and "-.->" not in report and "linkStyle" not in report
    assert out.rstrip().endswith("pocketmesh gate: PASS")
    assert "<testsuite" in (tmp_path / "junit.xml").read_text()


def test_gate_fails_when_an_edge_is_untested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, scripted=False)  # the node alone never goes right
    status = gate.main(["test_router.py", "--min-edge-coverage", "100", "--report-md", "gate.md",
                        "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "untested edge: Route -right-> Right" in out
    assert "FAIL: flow edge coverage 50.0% is under --min-edge-coverage=100" in out
    # The markdown report draws the flow, the untested edge dashed and coloured.
    report = (tmp_path / "gate.md").read_text()
    blocks = re.findall(r"^### (\S+)\n\n```mermaid\n(.*?)\n```$", report, flags=re.M | re.S)
    assert [name for name, _ in blocks] == ["Router"]
    drawn = read_mermaid(blocks[0][1] + "\n")
    labels = drawn["labels"]
    assert sorted((labels[a], action, labels[b], dashed) for a, action, b, dashed in drawn["edges"]) == [
        ("Route", "left", "Left", False), ("Route", "right", "Right", True),
    ]
    dashed_index = [i for i, edge in enumerate(drawn["edges"]) if edge[3]]
    assert drawn["styles"] == [f"linkStyle {dashed_index[0]} {UNTESTED_STYLE}"]


UNEVEN = '''
import pytest
from pocketmesh import BaseNode, Flow
from pocketmesh_testing.properties import assert_terminates


def build_router() -> Flow:
    route = BaseNode(name="Route")
    route >> BaseNode(name="Left")
    return Flow(route, name="Router")


def build_refunds() -> Flow:  # defined, never run by any test
    check = BaseNode(name="Check")
    check >> BaseNode(name="Pay")
    return Flow(check, name="Refunds")


@pytest.mark.flow_property
def test_router_terminates() -> None:
    assert_terminates(build_router())


@pytest.mark.flow_property
def test_a_broken_property() -> None:
    assert 1 + 1 == 3, "arithmetic is broken"
'''


def test_the_report_lists_flows_that_never_ran_and_the_failing_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "test_uneven.py").write_text(UNEVEN)
    status = gate.main(["test_uneven.py", "--report-md", "gate.md", "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "Refunds" in out and "never ran: no collected test or scenario ran this flow" in out
    assert "untested edge: Check -default-> Pay" in out
    assert "pocketmesh gate: FAIL (1 failing test(s))" in out
    report = (tmp_path / "gate.md").read_text()
    assert "**Result: FAIL (1 failing test(s))**" in report
    assert "Flows no test or scenario ran:\n\n- `Refunds`" in report
    assert "Failing tests:\n\n- `test_uneven.py::test_a_broken_property`: AssertionError: arithmetic is broken" in report


DESK = '''
from pocketmesh import BaseNode, Flow
from pocketmesh.a2a import A2ABaseNode


class Answer(A2ABaseNode):
    async def finalize(self, shared, prep, result, params):
        self.set_final_response_parts(shared, [self.create_text_part("hello")])


def escalations() -> Flow:
    triage = BaseNode(name="Triage")
    triage >> BaseNode(name="Escalate")
    return Flow(triage, name="Escalations")


flows = {"answer": Flow(Answer(), name="Answers"), "escalate": escalations()}
'''


def test_flows_a_scenario_agent_serves_but_no_scenario_plays_count_as_never_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "desk.py").write_text(DESK)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "desk.yaml").write_text(
        "agent: desk:flows\nskill: answer\nturns:\n  - user: hi\n    expect: {state: completed, text: hello}\n")
    status = gate.main(["scenarios", "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 0, out  # no threshold asked: untested flows are shown, not failed
    assert "Escalations" in out and "untested edge: Triage -default-> Escalate" in out
    assert out.count("never ran") == 1 and "pocketmesh gate: PASS" in out


GREETERS = '''
from pocketmesh import Flow
from pocketmesh.a2a import A2ABaseNode


class Hello(A2ABaseNode):
    async def finalize(self, shared, prep, result, params):
        self.set_final_response_parts(shared, [self.create_text_part("hello")])


class Bye(A2ABaseNode):
    async def finalize(self, shared, prep, result, params):
        self.set_final_response_parts(shared, [self.create_text_part("bye")])


flows = {"a": Flow(Hello()), "b": Flow(Bye())}
'''


def rows(out: str) -> dict[str, str]:
    """The gate's per-flow rows: label -> 'taken/wired'."""
    found = re.findall(r"^(\S.*?)\s+(\d+/\d+)\s+[\d.]+%(?:\s+\(minimum .*\))?$", out, flags=re.M)
    return {label: ratio for label, ratio in found}


def test_unnamed_flows_with_different_graphs_are_never_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greeters.py").write_text(GREETERS)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "greeters.yaml").write_text(
        "agent: greeters:flows\nskill: a\nturns:\n  - user: hi\n    expect: {state: completed, text: hello}\n")
    status = gate.main(["scenarios", "--min-edge-coverage", "100", "--report-md", "gate.md",
                        "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 1, out
    # Both flows are called "Flow"; each is shown under the skill that serves it.
    assert rows(out) == {"a": "1/1", "b": "0/1", "flow edge coverage": "1/2"}, out
    assert re.search(r"^b .*\n    never ran: no collected test or scenario ran this flow$", out, flags=re.M), out
    assert out.count("never ran:") == 1
    assert "FAIL: flow edge coverage 50.0% is under --min-edge-coverage=100" in out
    report = (tmp_path / "gate.md").read_text()
    assert "Flows no test or scenario ran:\n\n- `b`" in report
    assert re.findall(r"^### (.+)$", report, flags=re.M) == ["a", "b"]


FACTORY = '''
import pytest
from hypothesis import settings
from pocketmesh import BaseNode, Flow
from pocketmesh_testing.properties import assert_terminates, assert_resume_idempotent


class Route(BaseNode):
    async def finalize(self, shared, prep, result, params):
        return "left"


def build_router() -> Flow:
    route = Route()
    route - "left" >> BaseNode(name="Left")
    route - "right" >> BaseNode(name="Right")
    return Flow(route)


def build_checker() -> Flow:
    check = BaseNode(name="Check")
    check >> BaseNode(name="Pay")
    return Flow(check)


@pytest.mark.flow_property
def test_router_terminates() -> None:
    assert_terminates(build_router(), settings=settings(max_examples=15))


@pytest.mark.flow_property
def test_router_resumes() -> None:
    assert_resume_idempotent(build_router, settings=settings(max_examples=5))
'''


def test_a_flow_built_afresh_for_each_example_is_one_flow_and_labels_match_across_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "test_factory.py").write_text(FACTORY)
    status = gate.main(["test_factory.py", "--report-md", "gate.md", "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 0, out
    # Fresh flows from one factory are one flow; the other factory's flow is its own row.
    assert rows(out) == {"test_factory:build_checker": "0/1", "test_factory:build_router": "2/2",
                         "flow edge coverage": "2/3"}, out
    assert "untested edge: Check -default-> Pay" in out
    report = (tmp_path / "gate.md").read_text()
    assert "| test_factory:build_router | 2/2 | 100.0% |" in report
    assert "- `test_factory:build_checker`: `Check -default-> Pay`" in report
    assert re.findall(r"^### (.+)$", report, flags=re.M) == ["test_factory:build_checker", "test_factory:build_router"]


UNIT_TESTS = '''
from pocketmesh import BaseNode, Flow


def build_fixture() -> Flow:  # a flow a unit test builds for itself
    first = BaseNode(name="First")
    first >> BaseNode(name="Second")
    return Flow(first, name="Fixture")


def test_the_fixture_has_two_nodes() -> None:
    assert len(build_fixture().node_ids()[0]) == 2
'''


def test_flows_of_test_modules_the_gate_leaves_out_count_only_with_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, scripted=True)
    (tmp_path / "test_units.py").write_text(UNIT_TESTS)
    status = gate.main(["test_router.py", "test_units.py", "--min-edge-coverage", "100", "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert rows(out) == {"Router": "2/2", "flow edge coverage": "2/2"}, out
    # With --all the unit tests run too, and their module's flow counts (no test runs it as a flow).
    status = gate.main(["--all", "test_units.py", "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert rows(out) == {"Fixture": "0/1", "flow edge coverage": "0/1"}, out
