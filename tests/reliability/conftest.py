"""Real ``pocketmesh serve`` processes on loopback, and a JSON-RPC client that can spread
requests over replicas and survive a server being killed."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SKIP = (
    "PostgreSQL is not configured: set POCKETMESH_POSTGRES_DSN, e.g. run "
    '`eval "$(.ci/services.sh)"` before pytest (CI does).'
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (a server that loses the race retries another)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One ``pocketmesh serve`` subprocess."""

    target: str
    args: list[str]
    log: Path
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/a2a"

    def start(self, port: int | None = None, *, timeout: float = 20.0) -> None:
        """Start (or restart) the server and wait for its card; a lost port race tries another."""
        for _ in range(5):
            self.port = port or free_port()
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "pocketmesh.cli", "serve", self.target, "--port", str(self.port), *self.args],
                    cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout):
                return
            if port is not None:
                break
        raise AssertionError(f"pocketmesh serve {self.target} did not start; its log:\n{self.log.read_text()[-3000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                httpx.get(f"http://127.0.0.1:{self.port}/.well-known/agent-card.json", timeout=2).raise_for_status()
                return True
            except (OSError, httpx.HTTPError):
                time.sleep(0.02)
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop gracefully (SIGINT), or kill after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def server_env() -> dict[str, str]:
    """The environment of a served test agent: this checkout importable, OTel off, warnings logged."""
    env = {**os.environ, "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false", "POCKETMESH_LOG_LEVEL": "WARNING"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    """A factory of ``pocketmesh serve`` processes, all stopped after the test."""
    started: list[ServerProcess] = []
    env = server_env()

    def start(target: str, *args: str, extra_env: dict[str, str] | None = None, port: int | None = None) -> ServerProcess:
        server = ServerProcess(target, list(args), tmp_path / f"serve-{len(started)}.log", {**env, **(extra_env or {})})
        started.append(server)
        server.start(port)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class Turn:
    """One answered message: its reply, state and how long it took."""

    text: str
    state: str
    task_id: str
    seconds: float
    attempts: int = 1


@dataclass
class Conversation:
    """A client's side of one task: the messages it sent, with their ids, and the answers."""

    context_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    task_id: str | None = None
    sent: list[tuple[str, str]] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)


class RpcError(AssertionError):
    """A JSON-RPC error answer."""


class Client:
    """JSON-RPC 0.3 over httpx, each request to the next URL in turn (round-robin replicas)."""

    def __init__(self, urls: Sequence[str], *, timeout: float = 60.0) -> None:
        self._urls = itertools.cycle(list(urls))
        self.http = httpx.AsyncClient(
            timeout=timeout,
            # Below uvicorn's 5 s keep-alive: a connection the server is closing is never reused.
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=3.0),
        )
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request to the next replica; a JSON-RPC error raises :class:`RpcError`."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        response = await self.http.post(next(self._urls), json=body)
        response.raise_for_status()
        answer = response.json()
        if "error" in answer:
            raise RpcError(f"{method} answered {answer['error']}")
        return answer["result"]  # type: ignore[no-any-return]

    async def send(self, conversation: Conversation, text: str, *, message_id: str | None = None) -> Turn:
        """Send one user message of ``conversation`` (a new one, or again with ``message_id``)."""
        message_id = message_id or str(uuid.uuid4())
        message: dict[str, Any] = {
            "kind": "message", "role": "user", "messageId": message_id,
            "contextId": conversation.context_id, "parts": [{"kind": "text", "text": text}],
        }
        if conversation.task_id:
            message["taskId"] = conversation.task_id
        if not conversation.sent or conversation.sent[-1][1] != message_id:
            conversation.sent.append((text, message_id))
        start = time.perf_counter()
        task = await self.call("message/send", {"message": message})
        elapsed = time.perf_counter() - start
        conversation.task_id = task["id"]
        status = task["status"]
        reply = "".join(p.get("text", "") for p in (status.get("message") or {}).get("parts", []))
        turn = Turn(reply, status["state"], task["id"], elapsed)
        conversation.turns.append(turn)
        return turn

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self.call("tasks/get", {"id": task_id})


def all_messages(task: dict[str, Any]) -> list[dict[str, Any]]:
    """A task's messages in order: its history, then its status message if history lacks it."""
    messages = list(task.get("history") or [])
    status = (task.get("status") or {}).get("message")
    if status and (not messages or messages[-1].get("messageId") != status.get("messageId")):
        messages.append(status)
    return messages


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("parts", []))


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
