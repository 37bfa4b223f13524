"""Run every benchmark case and print one table of ratios measured in this run.

    python benchmarks/run.py [--only 1 2 ...]

Cases are the ``case_*.py`` modules beside this file, in name order; each exposes ``NAME`` and
``run(harness) -> list[Row]`` (and may expose ``available()``). Comparisons run in
``benchmarks/.venv-alt``, created on first use and never a dependency of pocketmesh.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ALT_PACKAGES, HERE, Row, alt_python, main_python, versions  # noqa: E402

ORDER = (
    "case_overhead",
    "case_persisted",
    "case_a2a",
    "case_scenarios",
    "case_cassette",
    "case_resume_property",
    "case_turns",
    "case_state",
    "case_suite",
)


def case_modules() -> list[str]:
    """Known cases first, then any other ``case_*.py`` added later."""
    found = sorted(p.stem for p in HERE.glob("case_*.py"))
    return [m for m in ORDER if m in found] + [m for m in found if m not in ORDER]


def number(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def render(rows: list[Row]) -> str:
    head = ("case", "workload", "system", "median", "spread (min-max)", "unit", "ratio", "note")
    body = [
        (r.case, r.workload, r.system, number(r.value),
         "" if r.spread is None else f"{number(r.spread[0])}-{number(r.spread[1])}",
         r.unit, "" if r.advantage is None else f"{r.advantage:.2f}x", r.note)
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


BUSY = 2.5
"""One-minute load average above which a case's figures are suspect on this 2-core machine
(the case's own worker accounts for about 1): the case runs again once the load has dropped."""


def wait_for_quiet(limit: float = 1.5, patience: float = 120.0) -> float:
    """Wait (at most ``patience`` seconds) for the load average to drop below ``limit``."""
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def run_case(module: object) -> list[Row]:
    """Run a case; if the machine was busy meanwhile, run it again and keep the calmer run."""
    name = module.NAME  # type: ignore[attr-defined]
    wait_for_quiet()
    print(f"running {name} ...", file=sys.stderr)
    rows = module.run(None)  # type: ignore[attr-defined]
    load = os.getloadavg()[0]
    if load > BUSY and not name.endswith("test suite"):
        print(f"load average {load:.2f} during {name}: running it again", file=sys.stderr)
        wait_for_quiet()
        again = module.run(None)  # type: ignore[attr-defined]
        if os.getloadavg()[0] < load:
            rows = again
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="case numbers to run, e.g. 1 2 (default: all)")
    args = parser.parse_args()
    alt = alt_python()
    rows: list[Row] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in case_modules():
        module = importlib.import_module(name)
        number = module.NAME.split(".")[0]
        if args.only and number not in args.only:
            continue
        if hasattr(module, "available") and not module.available():
            print(f"skipped {module.NAME}: not available", file=sys.stderr)
            continue
        try:
            rows.extend(run_case(module))
        except Exception as exc:  # one broken case must not cost the others' figures
            print(f"{module.NAME} failed: {exc}", file=sys.stderr)
            failed.append(module.NAME)
    ours = versions(main_python(), ("pocketmesh", "a2a-sdk", "protobuf", "starlette", "openai", "vcrpy", "PyYAML"))
    theirs = versions(alt, (*(p.split("[")[0] for p in ALT_PACKAGES), "protobuf", "starlette", "SQLAlchemy", "aiosqlite", "PyYAML"))
    print(render(rows))
    print()
    print("Medians of alternating rounds, each in a fresh process, with the lowest and highest round;")
    print("ratios compare systems measured side by side in this run. Exponents: k in cost ~ size^k,")
    print("fitted in log-log space (0 flat, 1 linear).")
    print(f"load average after the run: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    print("Case 1 ratio: that system's us/step over pocketmesh (trace + hook): >1 means pocketmesh is faster.")
    print("pocketmesh env: " + ", ".join(f"{k} {v}" for k, v in ours.items()))
    print("comparison env: " + ", ".join(f"{k} {v}" for k, v in theirs.items()))
    print(f"total {time.perf_counter() - started:.0f} s")
    if failed:
        print(f"FAILED cases (see stderr): {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
