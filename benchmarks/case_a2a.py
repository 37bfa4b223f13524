"""Case 3: A2A round trips. Runs ``benchmarks/a2a_roundtrip.py`` (its own servers and rounds)
and turns the table it prints into rows; absent that file, the case is skipped."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

NAME = "3. A2A round trips"


def available() -> bool:
    from _harness import HERE

    return (HERE / "a2a_roundtrip.py").exists()


def run(h: Any) -> list[Any]:
    from _harness import HERE, ROOT, Row

    done = subprocess.run(
        [sys.executable, str(HERE / "a2a_roundtrip.py"), "--rounds", "3", "--seconds", "2"],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"a2a_roundtrip.py failed:\n{done.stderr[-3000:]}")
    rows, workload = [], ""
    for line in done.stdout.splitlines():
        parts = line.split()
        if "client(s)" in line or line.startswith("in-process"):
            workload = line.strip().split(",")[0]
            continue
        if len(parts) < 3 or parts[0] == "server" or not parts[1].replace(".", "").isdigit():
            continue
        # The script's columns may grow: take the first "N.NNx" ratio and the name after it.
        ratio, note = None, ""
        for i, token in enumerate(parts[2:], start=2):
            if token.endswith("x") and token[:-1].replace(".", "").isdigit():
                ratio = float(token[:-1])
                base = parts[i + 1] if i + 1 < len(parts) and not parts[i + 1][0].isdigit() else "baseline"
                note = f"ratio: round trips/s over {base}"
                break
        rows.append(Row(NAME, workload, parts[0], float(parts[1]), "round trips/s", ratio, note))
    return rows
