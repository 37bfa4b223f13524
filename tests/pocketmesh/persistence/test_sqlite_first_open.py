"""Several processes opening one new SQLite file at once: the one that finds the file being
switched to WAL by another waits for it instead of failing with "database is locked"."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from pocketmesh import SQLitePersistence


async def test_opening_a_file_another_connection_is_setting_up_waits_for_it(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    # Another process creating the file: a rollback-journal write transaction in progress, the
    # state a file is in while its first opener switches it to WAL and creates the schema.
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE setup (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO setup VALUES (1)")

    loop = asyncio.get_running_loop()
    waiting = asyncio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting to switch it to WAL" in record.getMessage():
                loop.call_soon_threadsafe(waiting.set)

    handler = Seen(logging.DEBUG)
    logger = logging.getLogger("pocketmesh")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    store = SQLitePersistence(path, busy_timeout=30)
    try:
        save = asyncio.create_task(store.save_run("r1", {"n": 1}, {}))
        first, _ = await asyncio.wait({save, asyncio.create_task(waiting.wait())}, return_when=asyncio.FIRST_COMPLETED)
        assert save not in first, f"the store did not wait for the other connection: {save.exception()!r}"
        other.execute("COMMIT")  # the other process is done setting up
        await asyncio.wait_for(save, 30)
        assert await store.load_run("r1") == {"n": 1}
        check = sqlite3.connect(path)
        try:
            assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert check.execute("SELECT x FROM setup").fetchall() == [(1,)]  # its work is kept
        finally:
            check.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        other.close()
        await store.close()
