"""``pocketmesh gate``: run the flow property tests and scenarios as a release gate.

The gate runs pytest in a child process (so code coverage sees modules from their first import)
under the ``release`` Hypothesis profile, keeps only ``flow_property`` / ``scenario`` /
``simulation`` items unless ``--all``, records which ``node -action-> successor`` edges the runs
took, and fails on any test failure or on edge / code coverage under the thresholds. This module is also the child's pytest
plugin (``-p pocketmesh_testing.properties.gate``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_CHILD = "POCKETMESH_GATE_OUT"
_COV = "POCKETMESH_GATE_COV"
_ALL = "POCKETMESH_GATE_ALL"

# In the child, start coverage before anything imports the code under test.
_coverage: Any = None
if os.environ.get(_CHILD) and os.environ.get(_COV):
    from pocketmesh_testing.properties import code_coverage

    _coverage = code_coverage.start(os.environ[_COV].split(os.pathsep), Path.cwd())

import pytest  # noqa: E402

from pocketmesh_testing.properties import profiles  # noqa: E402,F401  (the child's --hypothesis-profile needs them)
from pocketmesh_testing.properties.code_coverage import (  # noqa: E402
    default_sources,
    markdown_lines,
    summary,
    terminal_lines,
)


def build_parser() -> argparse.ArgumentParser:
    """The gate's options."""
    parser = argparse.ArgumentParser(prog="pocketmesh gate", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="test paths (default: tests and scenarios, where present)")
    parser.add_argument("--all", action="store_true", help="run every test, not only flow properties and scenarios")
    parser.add_argument("--profile", default="release", help="Hypothesis profile (default: release)")
    parser.add_argument("--min-edge-coverage", type=float, default=0.0, metavar="PCT",
                        help="fail below this percentage of wired flow edges taken (default: 0)")
    parser.add_argument("--min-code-coverage", type=float, default=None, metavar="PCT",
                        help="fail below this percentage of line coverage of --cov (default: not measured)")
    parser.add_argument("--cov", action="append", default=None, metavar="SOURCE",
                        help="package or directory to measure (repeatable; default: the Python code under the "
                        "current directory); test files, conftest.py and virtualenvs never count")
    parser.add_argument("--report-md", metavar="PATH", help="also write the report as markdown")
    parser.add_argument("--junit-xml", metavar="PATH", help="write JUnit XML for CI")
    parser.add_argument("--failures-dir", default=".pocketmesh/failures", metavar="DIR",
                        help="where minimal failing examples are written (default: .pocketmesh/failures)")
    parser.epilog = "Arguments after -- go to pytest as they are."
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gate; returns the exit status (0 when everything passed and coverage is enough)."""
    given = list(sys.argv[1:] if argv is None else argv)
    split = given.index("--") if "--" in given else len(given)
    args = build_parser().parse_args(given[:split])
    args.pytest_args = given[split + 1 :]
    paths = args.paths or [p for p in ("tests", "scenarios") if Path(p).exists()]
    if not paths:
        print("pocketmesh gate: no test paths given and neither tests/ nor scenarios/ exists.", file=sys.stderr)
        return 4
    measure_code = args.min_code_coverage is not None or args.cov is not None
    with tempfile.TemporaryDirectory(prefix="pocketmesh-gate-") as scratch:
        out = Path(scratch) / "gate.json"
        env = {**os.environ, _CHILD: str(out), "POCKETMESH_FAILURES_DIR": args.failures_dir}
        if measure_code:
            env[_COV] = os.pathsep.join(args.cov or default_sources(Path.cwd()))
        if args.all:
            env[_ALL] = "1"
        command = [sys.executable, "-m", "pytest", "-p", "pocketmesh_testing.properties.gate", f"--hypothesis-profile={args.profile}",
                   *paths, *args.pytest_args]
        if args.junit_xml:
            command.append(f"--junitxml={args.junit_xml}")
        status = subprocess.call(command, env=env)
        data = json.loads(out.read_text()) if out.exists() else {"edges": {}, "code": None, "tests": {}}
        data["exit_status"] = status
    report, ok = render(data, args)
    print(report)
    if args.report_md:
        Path(args.report_md).write_text(report_markdown(data, args), encoding="utf-8")
    if status != 0:
        return int(status)
    return 0 if ok else 1


def _units(item: dict[str, Any]) -> tuple[int, int]:
    """(covered, total) of one flow of the report (a flow without edges: whether it ran)."""
    from pocketmesh_testing.properties.edges import coverage_units

    return coverage_units(map(tuple, item["edges"]), map(tuple, item["taken"]), int(item.get("runs", 1)))


def _edge_totals(edges: dict[str, Any]) -> tuple[int, int]:
    units = [_units(item) for item in edges.values()]
    return sum(u[0] for u in units), sum(u[1] for u in units)


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 100.0


def render(data: dict[str, Any], args: argparse.Namespace) -> tuple[str, bool]:
    """The terminal report, and whether the coverage thresholds are met."""
    edges = data.get("edges", {})
    lines = ["", "pocketmesh gate", f"{'flow':<32} {'edges':>9} {'covered':>8}"]
    for name, item in sorted(edges.items()):
        wired, taken = {tuple(e) for e in item["edges"]}, {tuple(e) for e in item["taken"]}
        covered, total = _units(item)
        lines.append(f"{name:<32} {covered:>4}/{total:<4} {_percent(covered, total):>7.1f}%")
        if not item.get("runs", 1):
            lines.append("    never ran: no collected test or scenario ran this flow")
        lines.extend(f"    untested edge: {n} -{a}-> {s}" for n, a, s in sorted(wired - taken))
    taken, wired = _edge_totals(edges)
    edge_pct = _percent(taken, wired)
    ok = True
    lines.append(f"{'flow edge coverage':<32} {taken:>4}/{wired:<4} {edge_pct:>7.1f}%  (minimum {args.min_edge_coverage:g}%)")
    if edge_pct < args.min_edge_coverage:
        ok = False
        lines.append(f"FAIL: flow edge coverage {_under(edge_pct, args.min_edge_coverage)}% is under --min-edge-coverage={args.min_edge_coverage:g}; "
                     f"add property tests or scenarios that take the untested edges and run the flows that never ran, "
                     f"listed above.")
    code = data.get("code")
    if code is not None:
        lines.append(f"{'code coverage':<32} {'':>9} {code:>7.1f}%  (minimum {args.min_code_coverage or 0:g}%)")
        lines.extend(terminal_lines(data.get("code_files", [])))
        if args.min_code_coverage is not None and code < args.min_code_coverage:
            ok = False
            lines.append(f"FAIL: code coverage {_under(code, args.min_code_coverage)}% is under --min-code-coverage={args.min_code_coverage:g}; "
                         f"the least covered files are listed above.")
    tests = data.get("tests", {})
    lines.append("tests: " + ", ".join(f"{v} {k}" for k, v in sorted(tests.items())) if tests else "tests: none ran")
    simulations = data.get("simulations", {})
    if simulations:
        lines.append("  of which simulations: " + ", ".join(f"{v} {k}" for k, v in sorted(simulations.items())))
    lines.extend(f"  failed: {f['test']}: {f['message']}" for f in data.get("failures", []))
    lines.append(f"pocketmesh gate: {_verdict(data, ok)}")
    return "\n".join(lines), ok


def _verdict(data: dict[str, Any], coverage_ok: bool) -> str:
    """``PASS``, or ``FAIL`` with the reasons."""
    why = []
    failed = len(data.get("failures", []))
    if failed:
        why.append(f"{failed} failing test(s)")
    elif data.get("exit_status", 0) not in (0, None):
        why.append(f"pytest exited with status {data['exit_status']}")
    if not coverage_ok:
        why.append("coverage under the minimum")
    return "PASS" if not why else "FAIL (" + ", ".join(why) + ")"


def report_markdown(data: dict[str, Any], args: argparse.Namespace) -> str:
    """The report as markdown."""
    edges = data.get("edges", {})
    coverage_ok = render(data, args)[1]
    out = ["# pocketmesh gate", "", f"**Result: {_verdict(data, coverage_ok)}**", "",
           "| flow | edges taken | coverage |", "|---|---|---|"]
    for name, item in sorted(edges.items()):
        covered, total = _units(item)
        out.append(f"| {name} | {covered}/{total} | {_percent(covered, total):.1f}% |")
    taken, wired = _edge_totals(edges)
    out += ["", f"Flow edge coverage: **{_percent(taken, wired):.1f}%** (minimum {args.min_edge_coverage:g}%)"]
    missing = [(name, e) for name, item in sorted(edges.items())
               for e in sorted({tuple(x) for x in item["edges"]} - {tuple(x) for x in item["taken"]})]
    if missing:
        out += ["", "Untested edges:", ""] + [f"- `{name}`: `{n} -{a}-> {s}`" for name, (n, a, s) in missing]
    if data.get("code") is not None:
        out += ["", f"Code coverage: **{data['code']:.1f}%** (minimum {args.min_code_coverage or 0:g}%)"]
        out += markdown_lines(data.get("code_files", []))
    never = [name for name, item in sorted(edges.items()) if not item.get("runs", 1)]
    if never:
        out += ["", "Flows no test or scenario ran:", ""] + [f"- `{name}`" for name in never]
    tests = data.get("tests", {})
    out += ["", "Tests: " + (", ".join(f"{v} {k}" for k, v in sorted(tests.items())) or "none ran")]
    simulations = data.get("simulations", {})
    if simulations:
        out += ["", "Simulations: " + ", ".join(f"{v} {k}" for k, v in sorted(simulations.items()))]
    failures = data.get("failures", [])
    if failures:
        out += ["", "Failing tests:", ""] + [f"- `{f['test']}`: {f['message']}" for f in failures]
    out += [""] + flow_diagrams(edges)
    return "\n".join(out + [""])


def flow_diagrams(edges: dict[str, Any]) -> list[str]:
    """Markdown lines drawing each flow as Mermaid: tested edges solid, untested ones dashed red."""
    if not edges:
        return []
    from pocketmesh.diagram import FlowGraph, to_mermaid

    out = ["## Flows", "", "Tested edges are solid; untested edges are dashed and red.", ""]
    for name, item in sorted(edges.items()):
        wired = [(n, a, s) for n, a, s in item["edges"]]
        graph = FlowGraph.from_json(item["graph"]) if "graph" in item else FlowGraph.from_edges(name, wired)
        untested = set(wired) - {(n, a, s) for n, a, s in item["taken"]}
        out += [f"### {name}", "", "```mermaid", to_mermaid(graph, untested=untested).rstrip("\n"), "```", ""]
    return out


# -- the child's pytest plugin ------------------------------------------------------------------

_GATED = ("flow_property", "scenario", "simulation")
"""The markers of the tests the gate runs (all tests with ``--all``)."""

_recorder: Any = None
_outcomes: dict[str, int] = {}
_simulations: dict[str, int] = {}
_failures: list[dict[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    global _recorder
    if not os.environ.get(_CHILD):
        return
    from pocketmesh_testing.properties.edges import EdgeRecorder

    _recorder = EdgeRecorder().__enter__()
    import pocketmesh

    # every run of the session, not only the properties' own
    pocketmesh.observe(lambda flow, result: _recorder.record(flow, result.trace))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get(_CHILD):
        return
    run_all = bool(os.environ.get(_ALL))
    keep = items if run_all else [i for i in items if any(i.get_closest_marker(m) for m in _GATED)]
    if _recorder is not None:
        from pocketmesh_testing.properties.inventory import defined_flows

        # Every flow the agents and test modules the gate runs define, run or not; flows of
        # modules whose tests the gate leaves out are those tests' business, not its own.
        for label, flow in defined_flows(keep):
            _recorder.declare(flow, label)
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        _outcomes[report.outcome] = _outcomes.get(report.outcome, 0) + 1
        if "simulation" in report.keywords:
            _simulations[report.outcome] = _simulations.get(report.outcome, 0) + 1
    if report.failed:
        lines = [line for line in (report.longreprtext or "").splitlines() if line.strip()]
        message = next((line for line in lines if line.startswith("E ")), lines[-1] if lines else report.outcome)
        _failures.append({"test": report.nodeid, "message": message.removeprefix("E").strip()[:200]})


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    # Read coverage here, inside pytest-cov's own wrapper, while its data is still live.
    result = yield
    target = os.environ.get(_CHILD)
    if target:
        code, files = (None, []) if _coverage is None else summary(_coverage)
        data = {"edges": _recorder.to_json() if _recorder else {}, "code": code, "code_files": files, "tests": _outcomes,
                "simulations": _simulations,
                "failures": _failures}
        Path(target).write_text(json.dumps(data), encoding="utf-8")
    return result


def _under(value: float, minimum: float) -> str:
    """``value`` with as many decimals as it takes to read below ``minimum`` (66.67, not 66.7)."""
    for places in range(1, 6):
        text = f"{value:.{places}f}"
        if float(text) < minimum:
            return text
    return f"{value}"
