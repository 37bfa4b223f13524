"""The demo: serve example agents with ``pocketmesh serve`` and play the scenario suite against them.

:func:`run_main_job` starts one ``pocketmesh serve MODULE:ATTR`` subprocess per agent the
scenarios name (on free 127.0.0.1 ports, runs in one SQLite file), waits for their cards, runs
pytest on the scenarios with ``--pocketmesh-agent-url AGENT=URL`` so every scenario talks to its
live server, prints each conversation and a verdict, stops the servers and returns the exit code.
Scenarios that script fake LLM replies are played live too: every server is started with its
``openai`` client aimed at one loopback port, where the scenario run serves its fake LLM.
Simulations are played live as well, their simulated user's and judge's model traffic replayed
from their cassettes (record mode ``none``): the demo needs no model and no key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from pocketmesh_testing.doubles.loopback import free_port
from pocketmesh_testing.conversations.discovery import file_kind
from pocketmesh_testing.conversations.format import Scenario, ScenarioFormatError, load_scenarios
from pocketmesh_testing.conversations.player import FAKE_LLM_PORT_ENV
from pocketmesh_testing.conversations.simulation_file import load_simulations

__all__ = ["run_main_job"]

DEFAULT_TARGET = "pocketmesh.examples.greeting:flows"


@dataclass
class _Server:
    target: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _scenario_files(dirs: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for entry in dirs:
        base = Path(entry)
        files += sorted(p for p in base.rglob("*.y*ml") if not any(x == "cassettes" or x.startswith("__") for x in p.relative_to(base).parts[:-1])
                        and file_kind(p) == "scenario")  # other YAML there (kept examples, data) is not played
    return files


def _start(target: str, db: Path, log_dir: Path, llm_port: int) -> _Server:
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    env = {
        **os.environ,
        "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
        "OPENAI_API_KEY": "sk-fake-pocketmesh",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pocketmesh.cli", "serve", target, "--host", "127.0.0.1", "--port", str(port), "--db", str(db)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    return _Server(target, f"http://127.0.0.1:{port}", process, log)


def _wait_for_card(server: _Server, timeout: float = 30.0) -> str | None:
    """``None`` once the card answers, else why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return f"exited with status {server.process.returncode}:\n{server.log.read_text(errors='replace')[-2000:]}"
        try:
            if httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=2).status_code == 200:
                return None
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return f"did not answer on {server.url} within {timeout:.0f} s"


def _stop(server: _Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)


_WHERE_EXAMPLES_ARE = (
    "The demo plays scenario files against the agents they name; the example agents' scenarios are "
    "not installed with the package, they live in the pocketmesh repository's scenarios/ directory: run "
    "`pocketmesh demo` from a clone of it, or copy that directory here (or pass --scenarios DIR)."
)


def _nothing_to_play(dirs: Sequence[str], files: list[Path], playable: list[Any], chosen: list[str]) -> str:
    """Why the demo has no scenario to play, and what to do about it."""
    where = ", ".join(dirs)
    missing = [d for d in dirs if not Path(d).is_dir()]
    if missing:
        return (f"no scenario directory {', '.join(missing)} (looked from {os.getcwd()}); nothing to play. "
                + _WHERE_EXAMPLES_ARE)
    if not files:
        return (f"no scenario files in {where} (YAML with `scenarios:` or `turns:`); nothing to play. "
                + _WHERE_EXAMPLES_ARE)
    named = sorted({str(s.agent) for s in playable})
    if not named:
        return (f"the scenario files in {where} name no in-process agent (`agent: module:attr`); nothing to "
                f"serve. Give each file an agent, or play them with pytest against a live one.")
    return (f"no scenario in {where} names {', '.join(chosen)}; the scenarios there name "
            f"{', '.join(named)}. Pass one of those, or no agent to play them all.")


def run_main_job(
    targets: Sequence[str] | None = None,
    *,
    scenario_dirs: Sequence[str] = ("scenarios",),
    db: str | os.PathLike[str] = "pocketmesh.sqlite",
    pytest_args: Sequence[str] = (),
    out: TextIO | None = None,
) -> int:
    """Serve the agents the scenarios name (or ``targets``), play the scenarios live, return an exit code."""
    out = out or sys.stdout
    try:
        files = _scenario_files(scenario_dirs)
        scenarios: list[Any] = [s for f in files for s in load_scenarios(f)]
        scenarios += [s for f in files for s in load_simulations(f)]  # a model plays the user, from cassettes
    except ScenarioFormatError as error:
        print(f"pocketmesh demo: invalid scenario file {error}", file=out)
        return 2
    playable = [s for s in scenarios if s.agent and ":" in s.agent and not s.agent.startswith("http")]
    chosen = list(targets) if targets else sorted({s.agent for s in playable if s.agent}) or [DEFAULT_TARGET]
    selected = [s for s in playable if s.agent in chosen]
    left_out = [s for s in scenarios if s not in selected]
    if not selected:
        print(f"pocketmesh demo: {_nothing_to_play(scenario_dirs, files, playable, chosen)}", file=out)
        return 5
    db_path = Path(db).resolve()
    log_dir = db_path.parent
    print(f"pocketmesh demo: serving {len(chosen)} agent(s), runs stored in {db_path}", file=out, flush=True)
    llm_port = free_port()
    servers = [_start(target, db_path, log_dir, llm_port) for target in chosen]
    try:
        for server in servers:
            problem = _wait_for_card(server)
            if problem is not None:
                print(f"pocketmesh demo: `pocketmesh serve {server.target}` {problem}", file=out)
                return 3
            print(f"  {server.target} -> {server.url}", file=out, flush=True)
        dirs_option = ["-o", "pocketmesh_scenario_dirs=" + " ".join(scenario_dirs)]
        return _play(selected, servers, db_path, [*dirs_option, *pytest_args], left_out, out, llm_port)
    finally:
        for server in servers:
            _stop(server)
            server.log.unlink(missing_ok=True)


def _play(
    selected: list[Any],
    servers: list[_Server],
    db: Path,
    pytest_args: Sequence[str],
    left_out: list[Any],
    out: TextIO,
    llm_port: int,
) -> int:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
               "-o", "addopts=", "-q", "--pocketmesh-transcripts", "--rootdir", os.getcwd(),
               "--pocketmesh-record-mode=none"]  # offline: model traffic only ever replays
    for server in servers:
        command += ["--pocketmesh-agent-url", f"{server.target}={server.url}", "--pocketmesh-agent-db", f"{server.target}={db}"]
    command += list(pytest_args)
    command += [f"{os.path.relpath(s.path)}::{s.name}" for s in selected]
    out.flush()
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false", FAKE_LLM_PORT_ENV: str(llm_port)}
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out.write(result.stdout)
    for scenario in left_out:
        print(f"  not played live: {os.path.relpath(scenario.path)}::{scenario.name} (names no served agent; pytest plays it in-process)", file=out)
    verdict = "PASS" if result.returncode == 0 else "FAIL"
    simulations = sum(1 for s in selected if not isinstance(s, Scenario))
    played = f"{len(selected) - simulations} scenario(s)" + (f" and {simulations} simulation(s)" if simulations else "")
    print(f"pocketmesh demo: {verdict} - {played} against {len(servers)} live agent(s) (pytest exit {result.returncode})", file=out, flush=True)
    return result.returncode


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(run_main_job(sys.argv[1:] or None))
