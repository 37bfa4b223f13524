"""The gate's code coverage: what it measures, and the files it names as least covered.

By default the gate measures the project's own code: the Python files under the current
directory. Test code never counts, whatever ``--cov`` names: ``test_*.py``, ``*_test.py``,
``conftest.py``, anything under a ``tests`` or ``test`` directory, and hidden directories and
virtualenvs (``.venv``, any directory holding a ``pyvenv.cfg``) are left out. The child pytest
process starts coverage before it imports the code under test (:func:`start`) and hands the
parent the total and, per file, the statements, the misses and the missing line ranges
(:func:`summary`), which the reports list least covered first (:func:`least_covered`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["SHOWN_FILES", "default_sources", "least_covered", "markdown_lines", "omitted", "start", "summary",
           "terminal_lines"]

SHOWN_FILES = 10
"""How many of the least covered files the reports list."""

_TEST_PATTERNS = ("tests/*", "test/*", "test_*.py", "*_test.py", "conftest.py", ".*")
"""Paths (from a directory of the project, at any depth) that are test code or not the project's."""


def default_sources(root: Path) -> list[str]:
    """What ``--cov`` measures when not given: the project directory itself."""
    return [str(root)]


def omitted(root: Path) -> list[str]:
    """Coverage ``omit`` patterns for test code, hidden directories and virtualenvs under ``root``."""
    patterns = [f"{root}{os.sep}{p}" for p in _TEST_PATTERNS]
    patterns += [f"{root}{os.sep}*{os.sep}{p}" for p in _TEST_PATTERNS]
    patterns += [f"{root}{os.sep}*site-packages{os.sep}*"]
    try:
        venvs = [entry for entry in root.iterdir() if (entry / "pyvenv.cfg").is_file()]
    except OSError:
        venvs = []
    return patterns + [f"{venv}{os.sep}*" for venv in venvs]


def start(sources: Sequence[str], root: Path) -> Any:
    """The coverage measurement of this process: pytest-cov's when it runs one, else a new one, started."""
    import coverage

    current = coverage.Coverage.current()
    if current is not None:
        return current
    measured = coverage.Coverage(source=list(sources), omit=omitted(root), data_file=None)
    measured.start()
    return measured


def summary(measured: Any) -> tuple[float, list[dict[str, Any]]]:
    """The total percentage, and per measured file its statements, misses and missing line ranges."""
    import json

    from coverage.results import format_lines

    with tempfile.TemporaryDirectory(prefix="pocketmesh-coverage-") as scratch:
        target = Path(scratch) / "coverage.json"
        try:
            total = float(measured.json_report(outfile=str(target)))
        except Exception:  # no data (nothing measured was imported)
            return 0.0, []
        data = json.loads(target.read_text(encoding="utf-8"))
    files = []
    for name, entry in data.get("files", {}).items():
        executed, missing = entry.get("executed_lines", []), entry.get("missing_lines", [])
        statements = sorted({*executed, *missing})
        files.append({
            "file": _shown_path(name),
            "statements": len(statements),
            "missing": len(missing),
            "percent": float(entry.get("summary", {}).get("percent_covered", 100.0)),
            "lines": format_lines(statements, missing) if missing else "",
        })
    return total, files


def _shown_path(name: str) -> str:
    try:
        return os.path.relpath(name)
    except ValueError:
        return name


def least_covered(files: list[dict[str, Any]], limit: int = SHOWN_FILES) -> list[dict[str, Any]]:
    """Files with missing lines, least covered first (then most lines missing), at most ``limit``."""
    missing = [f for f in files if f.get("missing")]
    return sorted(missing, key=lambda f: (f["percent"], -f["missing"], f["file"]))[:limit]


def terminal_lines(files: list[dict[str, Any]]) -> list[str]:
    """The least covered files as terminal report lines (none when nothing is missing)."""
    shown = least_covered(files)
    if not shown:
        return []
    more = len([f for f in files if f.get("missing")]) - len(shown)
    lines = [f"  least covered files{'':<21} {'stmts':>6} {'miss':>5} {'cover':>7}  missing lines"]
    lines += [f"  {f['file']:<40} {f['statements']:>6} {f['missing']:>5} {f['percent']:>6.1f}%  {f['lines']}"
              for f in shown]
    if more > 0:
        lines.append(f"  ... and {more} more file(s) with missing lines")
    return lines


def markdown_lines(files: list[dict[str, Any]]) -> list[str]:
    """The least covered files as a markdown table (none when nothing is missing)."""
    shown = least_covered(files)
    if not shown:
        return []
    out = ["", "Least covered files:", "", "| file | statements | missing | coverage | missing lines |",
           "|---|---|---|---|---|"]
    out += [f"| `{f['file']}` | {f['statements']} | {f['missing']} | {f['percent']:.1f}% | {f['lines']} |"
            for f in shown]
    return out
