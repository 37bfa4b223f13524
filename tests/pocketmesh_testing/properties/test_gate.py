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
    assert "Flow edge coverage: **100.0%**" in report
    assert "```mermaid\nflowchart TD\n" in report and "-.->" not in report and "linkStyle" not in report
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
