"""Shared machinery for the benchmark cases: the throwaway venv, subprocess runs, medians,
their spread, and growth exponents.

Each case measures pocketmesh and the systems it is compared with in fresh subprocesses,
in alternating rounds, and reports the median of the rounds with their spread (lowest and
highest round): the machine is shared and noisy, so only ratios measured side by side in one
run mean anything, and a wide spread says a figure is soft.
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
ALT_PACKAGES = (
    "pocketflow", "langgraph", "langgraph-checkpoint-sqlite", "vcrpy", "openai", "a2a-sdk[sqlite,http-server]",
)
"""The comparison env: the other frameworks, plain vcrpy, and the bare a2a-sdk with its own SQL
task store (SQLAlchemy + aiosqlite), pinned to the a2a-sdk version pocketmesh runs on."""


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
    spread: tuple[float, float] | None = None
    """The lowest and highest round, around the median in ``value``."""


def alt_python() -> Path:
    """The throwaway venv's interpreter, created (stdlib venv + pip) on first use."""
    python = ALT_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {ALT_VENV} with {', '.join(ALT_PACKAGES)} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(ALT_VENV)
        pins = [p.replace("a2a-sdk[sqlite,http-server]", f"a2a-sdk[sqlite,http-server]=={_version('a2a-sdk')}") for p in ALT_PACKAGES]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    return python


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


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


def spread(values: list[float]) -> tuple[float, float]:
    """The lowest and highest of ``values`` (the rounds behind a median)."""
    return (float(min(values)), float(max(values)))


def exponent(sizes: list[float], costs: list[float]) -> float:
    """The growth exponent k of cost ~ size^k: the least-squares slope in log-log space
    (0: flat, 1: linear, 2: quadratic)."""
    import math

    xs = [math.log(s) for s in sizes]
    ys = [math.log(c) for c in costs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def run_rounds(jobs: dict[str, tuple[Path, tuple[str, ...]]], rounds: int, module: str) -> dict[str, list[Any]]:
    """Run each job (python, worker args) once per round in a fresh subprocess, the jobs in a
    rotating order so that none always goes first; each job's results, round by round."""
    names = list(jobs)
    out: dict[str, list[Any]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            python, args = jobs[name]
            out[name].append(run_worker(python, module, *args))
    return out


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
