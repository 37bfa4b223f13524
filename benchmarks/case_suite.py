"""Case 9: the project's own test suite, wall time of one ``pytest -q`` run (reported once)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

NAME = "9. test suite"


def run(h: Any) -> list[Any]:
    from _harness import ROOT, Row

    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=ROOT, timeout=1800,
    )
    elapsed = time.perf_counter() - start
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
    summary = re.sub(r"=+", "", summary).strip()
    return [Row(NAME, "python -m pytest -q", "pocketmesh", elapsed, "s wall", None, summary)]
