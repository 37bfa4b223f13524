"""Per-category outcomes of conformance-kit runs, side by side, from their JUnit XML.

    python benchmarks/tck/summarize.py NAME=junit.xml [NAME=junit.xml ...] [--md summary.md]

A category is a test module of the kit (``core_operations/test_push_notifications``). Each cell
is passed / failed / skipped, with the expected failures (xfail, counted with the skipped) in
parentheses; the last row totals them, with the share of run tests that passed.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter


def outcomes(path: str) -> dict[str, tuple[str, str]]:
    """Test id -> (category, outcome), outcome one of passed, failed, skipped, xfail."""
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "")
        parts = classname.split(".")
        category = "/".join(parts[2:4]) if len(parts) >= 4 else classname
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "xfail" if child.get("type") == "pytest.xfail" else "skipped"
        found[f"{classname}::{case.get('name', '')}"] = (category, outcome)
    return found


def cell(counts: Counter[str]) -> str:
    return f"{counts['passed']}/{counts['failed']}/{counts['skipped'] + counts['xfail']}({counts['xfail']})"


def table(runs: list[tuple[str, dict[str, tuple[str, str]]]]) -> str:
    """The markdown table of ``runs`` (name, outcomes)."""
    categories = sorted({category for _, run in runs for category, _ in run.values()})
    lines = ["| category | " + " | ".join(f"{name} P/F/S(xf)" for name, _ in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for category in categories:
        cells = [cell(Counter(o for c, o in run.values() if c == category)) for _, run in runs]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    totals = []
    for _, run in runs:
        counts = Counter(o for _, o in run.values())
        ran = counts["passed"] + counts["failed"]
        totals.append(f"**{cell(counts)}** {100 * counts['passed'] / ran:.1f}%" if ran else cell(counts))
    lines.append("| TOTAL | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    md = None
    if "--md" in argv:
        at = argv.index("--md")
        md, argv = argv[at + 1], argv[:at] + argv[at + 2 :]
    if not argv or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    runs = [(a.split("=", 1)[0], outcomes(a.split("=", 1)[1])) for a in argv]
    text = table(runs)
    print(text)
    if md:
        with open(md, "w") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
