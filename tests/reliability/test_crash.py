"""SIGKILL a real server again and again in the middle of multi-turn runs, restart it on the
same SQLite file, and check every conversation ends exactly as an uninterrupted one.

Clients behave as a careful A2A client would: a message that got no answer (the connection
broke, or the server was not there) is sent again, with the same ``messageId`` (and, for a
first message, the same client-chosen ``contextId``), once the server is back. Each message
must be applied exactly once: the final shared state, the task history and every reply must
equal those of the same conversation run in-process without interruption.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx

from pocketmesh import InMemoryPersistence, SQLitePersistence, load_run_record
from pocketmesh.a2a import create_a2a_app

from . import agents
from .conftest import Client, Conversation, ServerProcess, all_messages, text_of
from .forked import forked_servers  # noqa: F401  (the fixture)

KILLS = 20
WORKERS = 8
TURNS = 6
STEP_DELAY = "0.02"


def _script(number: int) -> list[str]:
    return [f"c{number}", *(f"{'x' * (number % 5 + n)} {n}" for n in range(1, TURNS - 1)), "bye"]


class Crashes:
    """The server, killed at random moments and restarted, and what clients saw meanwhile."""

    def __init__(self, server: ServerProcess, seed: int) -> None:
        self.server = server
        self.random = random.Random(seed)
        self.up = asyncio.Event()
        self.up.set()
        self.in_flight = 0
        self.kills_mid_turn = 0
        self.resent = 0
        self.done = False

    async def send(self, client: Client, conversation: Conversation, text: str) -> None:
        """Send until answered; after a broken connection, again with the same message id."""
        message_id: str | None = None
        for attempt in range(1, 50):
            await self.up.wait()
            self.in_flight += 1
            try:
                turn = await client.send(conversation, text, message_id=message_id)
            except httpx.TransportError:
                message_id = conversation.sent[-1][1]
                self.resent += 1
                await asyncio.sleep(0.05)
                continue
            finally:
                self.in_flight -= 1
            turn.attempts = attempt
            return
        raise AssertionError(f"message {text!r} got no answer in 50 attempts")

    async def kill_repeatedly(self) -> None:
        for _ in range(KILLS):
            await asyncio.sleep(self.random.uniform(0.05, 0.4))
            if self.in_flight:
                self.kills_mid_turn += 1
            self.up.clear()
            await asyncio.to_thread(self.server.kill)
            await asyncio.to_thread(self.server.start, self.server.port)
            self.up.set()
        self.done = True


async def _worker(crashes: Crashes, client: Client, numbers: Any, finished: list[tuple[int, Conversation]]) -> None:
    while not crashes.done:
        number = next(numbers)
        conversation = Conversation()
        for text in _script(number):
            await crashes.send(client, conversation, text)
        finished.append((number, conversation))


async def _reference(number: int) -> tuple[list[str], dict[str, Any]]:
    """The replies and final shared state of conversation ``number`` run without interruption."""
    store = InMemoryPersistence()
    app = create_a2a_app(agents.flows, persistence=store)
    client = Client(["http://reference/a2a"])
    await client.http.aclose()
    client.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=30)
    try:
        conversation = Conversation()
        for text in _script(number):
            await client.send(conversation, text)
    finally:
        await client.aclose()
    record = await load_run_record(store, conversation.task_id or "")
    assert record is not None
    return [t.text for t in conversation.turns], record.shared


def _comparable(shared: dict[str, Any]) -> dict[str, Any]:
    """The flow's own state, and the conversation as (role, text) pairs; ids differ per run."""
    own = {k: v for k, v in shared.items() if not k.startswith("__")}
    own["history"] = [(m["role"], text_of(m)) for m in shared["__a2a_history"]]
    return own


async def test_sigkill_mid_run_then_resume_applies_every_message_once(
    forked_servers: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv(agents.STEP_DELAY_ENV, STEP_DELAY)
    db = tmp_path / "crash.sqlite"
    # Forked from a parent that imported everything once, each restart takes milliseconds,
    # not the second of a fresh interpreter; the killed server is still a process of its own.
    server = forked_servers("tests.reliability.agents:flows", "--db", str(db), extra_env={agents.STEP_DELAY_ENV: STEP_DELAY})
    crashes = Crashes(server, seed=20261107)
    client = Client([server.url], timeout=30)
    finished: list[tuple[int, Conversation]] = []
    numbers = iter(range(10_000))
    start = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(crashes.kill_repeatedly(), *(_worker(crashes, client, numbers, finished) for _ in range(WORKERS))),
            timeout=90,
        )
        tasks = {c.task_id: await client.get_task(c.task_id or "") for _, c in finished}
    finally:
        await client.aclose()
    elapsed = time.perf_counter() - start
    server.stop()

    # The uninterrupted runs, in-process: their outcome does not depend on the step delay.
    monkeypatch.setenv(agents.STEP_DELAY_ENV, "0")
    references = await asyncio.gather(*(_reference(number) for number, _ in finished))
    store = SQLitePersistence(db)
    problems: list[str] = []
    try:
        for (number, conversation), (replies, shared) in zip(finished, references):
            task_id = conversation.task_id or ""
            if [t.text for t in conversation.turns] != replies:
                problems.append(f"conversation {number}: replies {[t.text for t in conversation.turns]} != {replies}")
            messages = all_messages(tasks[task_id])
            ids = [m["messageId"] for m in messages]
            if [m["role"] for m in messages] != ["user", "agent"] * TURNS or len(set(ids)) != len(ids):
                problems.append(f"task {task_id}: history {[(m['role'], text_of(m)) for m in messages]}")
            elif ids[::2] != [mid for _, mid in conversation.sent] or [text_of(m) for m in messages[1::2]] != replies:
                problems.append(f"task {task_id}: history differs from what was sent and answered")
            record = await load_run_record(store, task_id)
            if record is None or record.status != "completed":
                problems.append(f"run {task_id}: {record and record.status}")
            elif _comparable(record.shared) != _comparable(shared):
                problems.append(f"run {task_id}: shared {_comparable(record.shared)} != reference {_comparable(shared)}")
    finally:
        await store.close()
    resent_turns = sum(1 for _, c in finished for t in c.turns if t.attempts > 1)
    print(
        f"\n[crash] {KILLS} SIGKILLs ({crashes.kills_mid_turn} with requests in flight), {len(finished)} conversations "
        f"x {TURNS} turns completed in {elapsed:.1f}s; {crashes.resent} re-sends, {resent_turns} turns answered "
        f"only after a re-send; {len(problems)} problems"
    )
    assert crashes.kills_mid_turn >= KILLS // 2, "too few kills landed while turns were in flight"
    assert not problems, "\n".join(problems[:20])
