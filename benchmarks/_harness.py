"""Shared machinery for the benchmark cases: the throwaway venv, subprocess runs, medians.

Each case measures pocketmesh and the systems it is compared with in fresh subprocesses,
in alternating rounds, and reports medians: the machine is shared and noisy, so only ratios
measured side by side in one run mean anything.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ALT_VENV = HERE / ".venv-alt"
ALT_PACKAGES = ("pocketflow", "langgraph", "langgraph-checkpoint-sqlite", "vcrpy", "openai")


@dataclass
class Row:
    """One line of the results table."""

    case: str
    workload: str
    system: str
    value: float
    unit: str
    advantage: float | None = None
    """How many times better pocketmesh is than this system (>1: pocketmesh wins)."""
    note: str = ""


def alt_python() -> Path:
    """The throwaway venv's interpreter, created (stdlib venv + pip) on first use."""
    python = ALT_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {ALT_VENV} with {', '.join(ALT_PACKAGES)} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(ALT_VENV)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *ALT_PACKAGES], check=True)
    return python


def main_python() -> Path:
    """The interpreter running the benchmarks (the project's venv)."""
    return Path(sys.executable)


def run_worker(python: Path, module: str, *args: str, timeout: float = 600) -> Any:
    """Run ``benchmarks/<module>.py args...`` under ``python``; its last stdout line is JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(python), str(HERE / f"{module}.py"), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed under {python}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def versions(python: Path, packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``packages`` in ``python``'s environment."""
    code = (
        "import json, sys, sqlite3\nfrom importlib.metadata import version, PackageNotFoundError\n"
        "out = {'python': sys.version.split()[0], 'sqlite': sqlite3.sqlite_version}\n"
        f"for p in {list(packages)!r}:\n"
        "    try: out[p] = version(p)\n"
        "    except PackageNotFoundError: out[p] = 'absent'\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]
