"""``pocketmesh serve`` processes forked from a parent that has already imported everything.

A server killed and restarted many times spends most of each restart importing Python. Here one
parent process imports the CLI and the served module once; each server is a fork of it that runs
``pocketmesh.cli.main(["serve", ...])``: a separate process, SIGKILLed and replaced like any other,
that starts in a fraction of the time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT, ServerProcess, free_port, server_env

PARENT = r"""
import importlib, os, sys
import pocketmesh.cli

importlib.import_module(sys.argv[1])  # the served module, once, before any fork
for line in sys.stdin:
    command, *args = line.split("\0")
    args[-1] = args[-1].rstrip("\n")
    if command == "start":
        log, argv = args[0], args[1:]
        pid = os.fork()
        if pid == 0:
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            status = 1
            try:
                status = pocketmesh.cli.main(argv)
            finally:
                os._exit(status)
        print(pid, flush=True)
    elif command == "reap":
        os.waitpid(int(args[0]), 0)
        print("reaped", flush=True)
"""


class ForkParent:
    """The long-lived parent the servers are forked from."""

    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PARENT, module], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def ask(self, *words: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\0".join(words) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer, f"the fork parent died (exit {self.process.poll()})"
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ForkedServer(ServerProcess):
    """A :class:`ServerProcess` forked from a :class:`ForkParent`; same start / kill / stop."""

    parent: ForkParent
    pid: int | None = None

    def start(self, port: int | None = None, *, timeout: float = 20.0) -> None:
        for _ in range(5):
            self.port = port or free_port()
            argv = ["serve", self.target, "--port", str(self.port), *self.args]
            self.pid = int(self.parent.ask("start", str(self.log), *argv))
            if self._wait_ready(timeout):
                return
            self._end(signal.SIGKILL)
            if port is not None:
                break
        raise AssertionError(f"pocketmesh serve {self.target} did not start; its log:\n{self.log.read_text()[-3000:]}")

    def _alive(self) -> bool:
        try:
            os.kill(self.pid or 0, 0)
        except ProcessLookupError:
            return False
        # A child that exited but was not reaped yet is a zombie: not serving.
        stat = Path(f"/proc/{self.pid}/stat")
        return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive():
                return False
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/.well-known/agent-card.json", timeout=2).raise_for_status()
                return True
            except httpx.HTTPError:
                time.sleep(0.01)
        return False

    def _end(self, sig: int, timeout: float = 10.0) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        if sig != signal.SIGKILL:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._exited(pid) is False:
                time.sleep(0.01)
            if self._exited(pid) is False:
                os.kill(pid, signal.SIGKILL)
        self.parent.ask("reap", str(pid))

    @staticmethod
    def _exited(pid: int) -> bool:
        stat = Path(f"/proc/{pid}/stat")
        return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, as a crash."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """Stop gracefully (SIGINT), or kill after 10 s."""
        self._end(signal.SIGINT)


@pytest.fixture
def forked_servers(tmp_path: Path) -> Iterator[Any]:
    """A factory of forked ``pocketmesh serve`` processes, all stopped after the test."""
    env = server_env()
    parents: dict[str, ForkParent] = {}
    started: list[ForkedServer] = []

    def start(target: str, *args: str, extra_env: dict[str, str] | None = None, port: int | None = None) -> ForkedServer:
        module = target.partition(":")[0]
        key = f"{module}\0{sorted((extra_env or {}).items())}"
        if key not in parents:
            parents[key] = ForkParent(module, {**env, **(extra_env or {})})
        server = ForkedServer(target, list(args), tmp_path / f"serve-{len(started)}.log", env)
        server.parent = parents[key]
        started.append(server)
        server.start(port)
        return server

    yield start
    for server in started:
        server.stop()
    for parent in parents.values():
        parent.close()
