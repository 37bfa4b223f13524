"""Two replicas on one real Redis: a replica whose lease runs out while a synchronous node blocks
stops its turn and writes nothing more, so the turn another replica ran meanwhile stands; and a
lock whose release could not reach Redis is let go once Redis answers again."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from pocketmesh import Flow, load_run_record
from pocketmesh.a2a import A2ABaseNode

from ..pocketmesh.a2a.conftest import serving
from ..pocketmesh.persistence.conftest import drop_backend
from .proxy import Proxy

redis = pytest.importorskip("redis", reason="Redis tests need redis-py: pip install 'pocketmesh[redis]'")

from pocketmesh.persistence.redis import RedisPersistence  # noqa: E402

URL = os.environ.get("POCKETMESH_REDIS_URL", "")
pytestmark = pytest.mark.skipif(
    not URL, reason='these tests need Redis: set POCKETMESH_REDIS_URL, or run eval "$(.ci/services.sh)"'
)
HANG = 30.0
"""Seconds after which a wait counts as hung (a hang detector, not a timing assertion)."""


class Blocking(A2ABaseNode):
    """A synchronous node: remembers each input and asks for more; "block" first waits for
    ``release``. ``finalized`` lists the inputs whose turn got past the wait, in any replica."""

    started: threading.Event
    release: threading.Event
    finalized: list[str]

    def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        if shared.get("input") == "block":
            self.started.set()
            self.release.wait(HANG)

    def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        self.finalized.append(str(shared.get("input")))
        shared.setdefault("seen", []).append(shared.get("input"))
        self.set_final_response_parts(shared, [self.create_text_part(f"answer to {shared.get('input')}")])
        return "input-required"


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[Proxy]:
    """A proxy in front of the Redis server."""
    where = urlsplit(URL)
    started = await Proxy(where.hostname or "127.0.0.1", where.port or 6379).start()
    yield started
    await started.close()


def proxied(url: str, port: int) -> str:
    where = urlsplit(url)
    return where._replace(netloc=where.netloc.replace(f"{where.hostname}:{where.port or 6379}", f"127.0.0.1:{port}")).geturl()


def send(text: str, task_id: str | None = None, message_id: str | None = None) -> dict[str, Any]:
    message = {"kind": "message", "role": "user", "messageId": message_id or str(uuid.uuid4()), "parts": [{"kind": "text", "text": text}]}
    if task_id:
        message["taskId"] = task_id
    return {"jsonrpc": "2.0", "id": text, "method": "message/send", "params": {"message": message}}


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("parts", []))


async def test_a_replica_that_lost_its_lease_stops_its_turn_and_writes_nothing(proxy: Proxy) -> None:
    prefix = f"pmtest:{uuid.uuid4().hex[:12]}:"
    # Replica 1 reaches Redis through the proxy; replica 2 directly. Both on one key prefix.
    first = RedisPersistence(proxied(URL, proxy.port), prefix=prefix, lock_lease=0.5)
    second = RedisPersistence(URL, prefix=prefix, lock_lease=0.5)
    node = Blocking()
    node.started, node.release, node.finalized = threading.Event(), threading.Event(), []
    admin = redis.Redis.from_url(URL, decode_responses=True)
    try:
        async with (
            serving({"steps": Flow(node)}, first) as one,
            serving({"steps": Flow(node)}, second) as two,
            httpx.AsyncClient(timeout=HANG) as http,
        ):
            opened = (await http.post(one.rpc_url, json=send("first"))).json()["result"]
            task_id = opened["id"]
            blocked_id = str(uuid.uuid4())
            blocked = asyncio.create_task(http.post(one.rpc_url, json=send("block", task_id, blocked_id)))
            assert await asyncio.to_thread(node.started.wait, HANG)

            # Replica 1 can no longer reach Redis: its lease runs out there, for real.
            proxy.pause()
            lock = second.lock_key(task_id)
            for _ in range(int(HANG / 0.02)):
                if not admin.exists(lock):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"the lock {lock} never ran out")
            # Replica 2 takes the task and answers the next message: an acknowledged turn.
            taken = (await http.post(two.rpc_url, json=send("next", task_id))).json()
            proxy.restore()
            # Replica 1 stopped its turn on its own: the answer comes while the node still blocks.
            stopped = (await asyncio.wait_for(blocked, HANG)).json()
            assert not node.release.is_set()
            node.release.set()  # the node's thread finishes now; its result goes nowhere
            task = (await http.post(two.rpc_url, json={"jsonrpc": "2.0", "id": 9, "method": "tasks/get", "params": {"id": task_id}})).json()
            record = await load_run_record(second, task_id)
            # The client sends the stopped message again, to replica 1: it is applied once.
            again = (await http.post(one.rpc_url, json=send("block", task_id, blocked_id))).json()
            after = await load_run_record(second, task_id)
    finally:
        node.release.set()
        admin.close()
        drop_backend(second)

    assert text_of(taken["result"]["status"]["message"]) == "answer to next"
    assert stopped["error"]["code"] == -32603, stopped
    assert "lost the task's lock" in stopped["error"]["message"] and "send the message again" in stopped["error"]["message"]
    # Nothing replica 1 did after losing the lease overwrote replica 2's turn.
    assert task["result"]["status"]["state"] == "input-required"
    assert text_of(task["result"]["status"]["message"]) == "answer to next"
    assert record is not None and record.shared["seen"] == ["first", "next"]
    assert text_of(again["result"]["status"]["message"]) == "answer to block"
    assert after is not None and after.shared["seen"] == ["first", "next", "block"]
    assert node.finalized == ["first", "next", "block"]  # the stopped turn never went on


async def test_a_lock_whose_release_failed_is_let_go_once_redis_answers(proxy: Proxy) -> None:
    prefix = f"pmtest:{uuid.uuid4().hex[:12]}:"
    store = RedisPersistence(proxied(URL, proxy.port), prefix=prefix, lock_lease=60)
    admin = redis.Redis.from_url(URL, decode_responses=True)
    try:
        async with store.run_lock("task-1"):
            assert admin.exists(store.lock_key("task-1"))
            proxy.cut()  # Redis goes away (a restart, a network cut) as the turn ends
        assert admin.exists(store.lock_key("task-1"))  # the release could not reach it
        proxy.restore()
        # Long before the 60 s lease would free it, the holder's retry lets it go.
        for _ in range(int(HANG / 0.02)):
            if not admin.exists(store.lock_key("task-1")):
                break
            await asyncio.sleep(0.02)
        assert not admin.exists(store.lock_key("task-1"))
        async with RedisPersistence(URL, prefix=prefix).run_lock("task-1", timeout=HANG):
            pass
    finally:
        admin.close()
        drop_backend(RedisPersistence(URL, prefix=prefix))  # not through the proxy, which this loop runs
