"""`pocketmesh gate` verdicts: a failing test fails the gate whatever the coverage, and
``--min-code-coverage`` holds at its boundary (exactly the minimum passes, just under fails)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pocketmesh_testing.properties import gate

PRICING = '''
def price(quantity):
    if quantity > 10:
        return quantity * 9
    return quantity * 10
'''
"""Four statements; the tests below run three of them: exactly 75% line coverage."""

MODULE = '''
import pytest
from hypothesis import settings

from pocketmesh import BaseNode, Flow
from pocketmesh_testing.properties import assert_terminates

from pricing import price


def build() -> Flow:
    return Flow(BaseNode(name="Only"), name="Single")


@pytest.mark.flow_property
def test_single_terminates() -> None:
    assert_terminates(build(), settings=settings(max_examples=2))
    assert price(2) == 20
    assert price(3) == EXPECTED
'''


def project(directory: Path, *, expected: int) -> None:
    (directory / "pricing").mkdir()
    (directory / "pricing" / "__init__.py").write_text(textwrap.dedent(PRICING))
    (directory / "test_pricing.py").write_text(textwrap.dedent(MODULE).replace("EXPECTED", str(expected)))


def run_gate(*options: str) -> int:
    return gate.main(["test_pricing.py", "--cov", "pricing", "--min-edge-coverage", "100", *options,
                      "--", "-q", "-p", "no:cacheprovider"])


def test_a_failing_test_fails_the_gate_even_with_every_threshold_met(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, expected=31)  # wrong: price(3) is 30
    status = run_gate("--min-code-coverage", "50")
    out = capsys.readouterr().out
    assert status != 0, out
    assert "1 failed" in out
    # The coverage side alone would have passed: no threshold complaint in the report.
    assert "flow edge coverage" in out and "FAIL:" not in out
    assert "75.0%  (minimum 50%)" in out


@pytest.mark.parametrize(("minimum", "passes"), [("75", True), ("75.01", False)], ids=["exactly-at", "just-below"])
def test_the_code_coverage_minimum_is_enforced_at_its_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], minimum: str, passes: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, expected=30)
    status = run_gate("--min-code-coverage", minimum)
    out = capsys.readouterr().out
    assert "1 passed" in out
    assert f"75.0%  (minimum {float(minimum):g}%)" in out
    if passes:
        assert status == 0, out
        assert "FAIL:" not in out
    else:
        assert status == 1, out
        assert f"FAIL: code coverage 75.0% is under --min-code-coverage={float(minimum):g}." in out
