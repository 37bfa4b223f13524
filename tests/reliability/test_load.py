"""Many concurrent multi-turn conversations against real servers: nothing lost, nothing doubled.

The default size is small enough for every test run; ``POCKETMESH_LOAD_FULL=1`` runs the full
200 conversations x 5 turns. Each server is a ``pocketmesh serve`` subprocess; the PostgreSQL
variant runs two of them on one database and alternates every request between them, so turns
of one task land on both replicas in turn.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pocketmesh import load_run_record

from .conftest import POSTGRES_SKIP, Client, Conversation, all_messages, percentile, text_of

FULL = os.environ.get("POCKETMESH_LOAD_FULL") == "1"
CONVERSATIONS = 200 if FULL else 40
TURNS = 5
GREETING = "pocketmesh.examples.greeting:flows"


def _script(index: int) -> list[str]:
    return [f"User{index}", *(f"note {index}.{n}" for n in range(1, TURNS - 1)), "bye"]


def _expected_reply(index: int, text: str, first: bool) -> str:
    if first:
        return f"Hello, {text}! What's on your mind?"
    if text == "bye":
        return f"Goodbye, User{index}!"
    return f'Got it: "{text}". Anything else?'


async def _converse(client: Client, index: int) -> Conversation:
    conversation = Conversation()
    for n, text in enumerate(_script(index)):
        await client.send(conversation, text)
    return conversation


async def _run_load(urls: list[str], persistence: Any, label: str) -> None:
    client = Client(urls)
    try:
        start = time.perf_counter()
        conversations = await asyncio.gather(*(_converse(client, i) for i in range(CONVERSATIONS)))
        wall = time.perf_counter() - start
        tasks = await asyncio.gather(*(client.get_task(c.task_id or "") for c in conversations))
    finally:
        await client.aclose()

    problems: list[str] = []
    for index, (conversation, task) in enumerate(zip(conversations, tasks)):
        script = _script(index)
        states = [t.state for t in conversation.turns]
        if states != ["input-required"] * (TURNS - 1) + ["completed"]:
            problems.append(f"conversation {index}: states {states}")
        replies = [t.text for t in conversation.turns]
        expected = [_expected_reply(index, text, n == 0) for n, text in enumerate(script)]
        if replies != expected:
            problems.append(f"conversation {index}: replies {replies} != {expected}")
        messages = all_messages(task)
        roles = [m["role"] for m in messages]
        ids = [m["messageId"] for m in messages]
        if roles != ["user", "agent"] * TURNS or len(set(ids)) != len(ids):
            problems.append(f"task {task['id']}: history roles {roles}, {len(ids) - len(set(ids))} repeated ids")
            continue
        if [m["messageId"] for m in messages[::2]] != [mid for _, mid in conversation.sent]:
            problems.append(f"task {task['id']}: user messages in history differ from those sent")
        if [text_of(m) for m in messages[1::2]] != expected:
            problems.append(f"task {task['id']}: agent messages in history differ from the replies")
        record = await load_run_record(persistence, task["id"])
        if record is None or record.status != "completed":
            problems.append(f"run {task['id']}: record {record and record.status}")
            continue
        recorded = [m["messageId"] for m in record.shared["__a2a_history"]]
        if recorded != ids[:-1]:
            problems.append(f"run {task['id']}: the run's history {len(recorded)} messages differs from the task's")
    latencies = [t.seconds for c in conversations for t in c.turns]
    print(
        f"\n[load {label}] {CONVERSATIONS} conversations x {TURNS} turns = {len(latencies)} turns in {wall:.2f}s "
        f"({len(latencies) / wall:.0f} turns/s); per turn p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
        f"{len(problems)} problems"
    )
    assert not problems, "\n".join(problems[:20])


async def test_load_sqlite_one_server(servers: Any, tmp_path: Path) -> None:
    from pocketmesh import SQLitePersistence

    db = tmp_path / "load.sqlite"
    server = servers(GREETING, "--db", str(db))
    store = SQLitePersistence(db)
    try:
        await _run_load([server.url], store, "sqlite, 1 server")
    finally:
        await store.close()


async def test_load_sqlite_two_servers_on_one_file(servers: Any, tmp_path: Path) -> None:
    from pocketmesh import SQLitePersistence

    db = tmp_path / "load.sqlite"
    first, second = servers(GREETING, "--db", str(db)), servers(GREETING, "--db", str(db))
    store = SQLitePersistence(db)
    try:
        await _run_load([first.url, second.url], store, "sqlite, 2 servers on one file")
    finally:
        await store.close()


async def test_load_postgres_two_replicas(servers: Any) -> None:
    dsn = os.environ.get("POCKETMESH_POSTGRES_DSN")
    if not dsn:
        pytest.skip(POSTGRES_SKIP)
    from pocketmesh import PostgresPersistence

    first, second = servers(GREETING, "--db", dsn), servers(GREETING, "--db", dsn)
    store = PostgresPersistence(dsn)
    try:
        await _run_load([first.url, second.url], store, "postgres, 2 replicas")
    finally:
        await store.close()
