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
        assert f"FAIL: code coverage 75.0% is under --min-code-coverage={float(minimum):g}; " in out


DISCOUNTS = '''
def discount(code):
    if code == "SPRING":
        return 10
    if code == "SUMMER":
        return 15
    return 0


def unused():
    return "never called"
'''
"""Eight statements (the blank first line included, def lines count); the test runs the first
branch only: lines 5-7 and 11 are missing."""

CONFTEST = '''
import pytest


@pytest.fixture
def customer():
    if False:
        return "never"
    return "dana"
'''


def test_code_coverage_by_default_measures_the_project_not_its_tests_and_names_the_least_covered_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, expected=30)
    (tmp_path / "pricing" / "discounts.py").write_text(textwrap.dedent(DISCOUNTS))
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_pricing.py").write_text(
        (tmp_path / "test_pricing.py").read_text().replace("from pricing import price", "from pricing import price\n"
                                                            "from pricing.discounts import discount")
        + "    assert discount('SPRING') == 10\n"
    )
    status = gate.main(["test_pricing.py", "--min-code-coverage", "60", "--report-md", "gate.md",
                        "--", "-q", "-p", "no:cacheprovider"])
    out = capsys.readouterr().out
    assert status == 1, out
    # pricing: 3 of 4 and 4 of 8 statements ran (test_pricing.py and conftest.py are not counted)
    assert "58.3%  (minimum 60%)" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("  pricing")]
    assert lines == [["pricing/discounts.py", "8", "4", "50.0%", "5-7,", "11"],
                     ["pricing/__init__.py", "4", "1", "75.0%", "4"]], out
    assert "test_pricing.py " not in out and "conftest.py" not in out
    assert "FAIL: code coverage 58.3% is under --min-code-coverage=60; the least covered files are listed above." in out
    report = (tmp_path / "gate.md").read_text()
    assert "Code coverage: **58.3%** (minimum 60%)" in report
    assert "| `pricing/discounts.py` | 8 | 4 | 50.0% | 5-7, 11 |\n| `pricing/__init__.py` | 4 | 1 | 75.0% | 4 |" in report


THIRDS = '''
def price(quantity):
    if quantity > 10:
        return quantity * 9
    return quantity * 10


def refund(quantity):
    return -price(quantity)
'''
"""Six statements; the tests run four of them: 66.67% line coverage, which rounds up to 67%."""


def test_a_coverage_a_fraction_under_the_minimum_fails_though_it_rounds_up_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project(tmp_path, expected=30)
    (tmp_path / "pricing" / "__init__.py").write_text(textwrap.dedent(THIRDS))
    status = run_gate("--min-code-coverage", "66.7")
    out = capsys.readouterr().out
    assert "1 passed" in out
    assert status == 1, out
    assert "FAIL: code coverage 66.67% is under --min-code-coverage=66.7; " in out
