"""A server killed in the middle of a turn, and the client's next message a new one rather than
the cut-short message again: the cut-short turn is finished first and its answer goes into the
task, then the new message gets a turn and an answer of its own. Each message applies once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from pocketmesh import SQLitePersistence, load_run_record

from . import agents
from .conftest import Client, Conversation, all_messages, text_of
from .forked import forked_servers  # noqa: F401  (the fixture)


async def _until_cut(store: SQLitePersistence, task_id: str, text: str) -> None:
    """Wait until the run has saved the first step of ``text``'s turn (mid-turn)."""
    while True:
        record = await load_run_record(store, task_id)
        if record is not None and record.status == "running" and f"receive:{text}" in record.shared.get("log", []):
            return
        await asyncio.sleep(0.005)


async def test_a_new_message_after_a_crash_mid_turn_gets_a_turn_of_its_own(forked_servers: Any, tmp_path: Path) -> None:
    db = tmp_path / "cut.sqlite"
    server = forked_servers("tests.reliability.agents:flows", "--db", str(db), extra_env={agents.STEP_DELAY_ENV: "0.2"})
    client = Client([server.url], timeout=30)
    conversation = Conversation()
    store = SQLitePersistence(db)
    try:
        first = await client.send(conversation, "one")
        task_id = first.task_id
        sending = asyncio.create_task(client.send(conversation, "two"))
        await asyncio.wait_for(_until_cut(store, task_id, "two"), 20)
        server.kill()
        with pytest.raises(httpx.TransportError):
            await sending
        server.start(server.port)
        third = await client.send(conversation, "three")
        task = await client.get_task(task_id)
        record = await load_run_record(store, task_id)
    finally:
        await client.aclose()
        await store.close()

    assert (first.text, third.text) == ("turn 1: one (total 3)", "turn 3: three (total 11)")
    assert [(m["role"], text_of(m)) for m in all_messages(task)] == [
        ("user", "one"), ("agent", "turn 1: one (total 3)"),
        ("user", "two"), ("user", "three"), ("agent", "turn 2: two (total 6)"),
        ("agent", "turn 3: three (total 11)"),
    ]
    assert record is not None and record.status == "input-required"
    assert record.shared["inputs"] == ["one", "two", "three"]
    assert record.shared["log"].count("receive:two") == 1 and record.shared["log"].count("weigh:3") == 2
