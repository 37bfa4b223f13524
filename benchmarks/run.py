"""Run every benchmark case and print one table of ratios measured in this run.

    python benchmarks/run.py [--only 1 2 ...]

Cases are the ``case_*.py`` modules beside this file, in name order; each exposes ``NAME`` and
``run(harness) -> list[Row]`` (and may expose ``available()``). Comparisons run in
``benchmarks/.venv-alt``, created on first use and never a dependency of pocketmesh.
"""

from __future__ import annotations

import argparse
import importlib
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
    "case_suite",
)


def case_modules() -> list[str]:
    """Known cases first, then any other ``case_*.py`` added later."""
    found = sorted(p.stem for p in HERE.glob("case_*.py"))
    return [m for m in ORDER if m in found] + [m for m in found if m not in ORDER]


def render(rows: list[Row]) -> str:
    head = ("case", "workload", "system", "median", "unit", "ratio", "note")
    body = [
        (r.case, r.workload, r.system, f"{r.value:,.2f}" if r.value < 100 else f"{r.value:,.0f}",
         r.unit, "" if r.advantage is None else f"{r.advantage:.2f}x", r.note)
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="case numbers to run, e.g. 1 2 (default: all)")
    args = parser.parse_args()
    alt = alt_python()
    rows: list[Row] = []
    started = time.perf_counter()
    for name in case_modules():
        module = importlib.import_module(name)
        number = module.NAME.split(".")[0]
        if args.only and number not in args.only:
            continue
        if hasattr(module, "available") and not module.available():
            print(f"skipped {module.NAME}: not available", file=sys.stderr)
            continue
        print(f"running {module.NAME} ...", file=sys.stderr)
        rows.extend(module.run(None))
    ours = versions(main_python(), ("pocketmesh", "a2a-sdk", "openai", "vcrpy"))
    theirs = versions(alt, ALT_PACKAGES)
    print(render(rows))
    print()
    print("Ratios compare systems measured side by side in this run (medians of alternating rounds).")
    print("Case 1 ratio: that system's us/step over pocketmesh (trace + hook): >1 means pocketmesh is faster.")
    print("pocketmesh env: " + ", ".join(f"{k} {v}" for k, v in ours.items()))
    print("comparison env: " + ", ".join(f"{k} {v}" for k, v in theirs.items()))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
