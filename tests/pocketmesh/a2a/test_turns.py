"""Every reply answers its own message, over real HTTP: a dropped stream does not hand its
answer to the next message, and parallel duplicates of a first message all get an answer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pocketmesh import Flow, InMemoryPersistence, load_run_record
from pocketmesh.a2a import A2ABaseNode

from .conftest import serving

V1 = {"A2A-Version": "1.0"}
HANG = 30.0
"""Seconds after which a request counts as hung (a hang detector, not a timing assertion)."""


class Gate:
    """The asyncio events one test steers the served flow with."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self.open = asyncio.Event()


class GatedAnswer(A2ABaseNode):
    """Answers "answer to <input>" and waits for more; the input "two" first waits for the gate."""

    gate: Gate

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        if shared.get("input") == "two":
            self.gate.held.set()
            await self.gate.open.wait()

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared.setdefault("seen", []).append(shared.get("input"))
        self.set_final_response_parts(shared, [self.create_text_part(f"answer to {shared.get('input')}")])
        return "input-required"


class WatchedStore(InMemoryPersistence):
    """In-memory runs that can open a gate the next time a task record is read."""

    def __init__(self) -> None:
        super().__init__()
        self.on_task_read: Callable[[], None] | None = None

    async def load_checkpoint(self, run_id: str, **kwargs: Any) -> Any:
        hook, self.on_task_read = (self.on_task_read, None) if run_id.startswith("a2a-task:") else (None, self.on_task_read)
        if hook is not None:
            hook()
        return await super().load_checkpoint(run_id, **kwargs)


class Watch:
    """ASGI middleware that tells when the app has read a request's body, and when it is done
    with a request (by its ``x-test-request`` header)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.done: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.bodies_read = 0
        self._read = asyncio.Condition()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        tag = dict(scope.get("headers") or []).get(b"x-test-request", b"").decode()

        async def reading() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body"):
                async with self._read:
                    self.bodies_read += 1
                    self._read.notify_all()
            return message

        try:
            await self.app(scope, reading, send)
        finally:
            if tag:
                self.done[tag].set()

    async def until_read(self, count: int) -> None:
        """Wait until the app has read ``count`` request bodies in all."""
        async with self._read:
            await asyncio.wait_for(self._read.wait_for(lambda: self.bodies_read >= count), HANG)


def v1_send(text: str, method: str = "SendMessage", **message: Any) -> dict[str, Any]:
    body = {"role": "ROLE_USER", "messageId": str(uuid.uuid4()), "parts": [{"text": text}], **message}
    return {"jsonrpc": "2.0", "id": text, "method": method, "params": {"message": body}}


def text_of(message: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in message.get("parts", []))


async def test_a_dropped_stream_does_not_answer_the_next_message() -> None:
    gate = Gate()
    node = GatedAnswer()
    node.gate = gate
    store = WatchedStore()
    watch: Watch | None = None

    def wrap(app: Any) -> Any:
        nonlocal watch
        watch = Watch(app)
        return watch

    async with serving({"gated": Flow(node)}, store, wrap=wrap) as served, httpx.AsyncClient(timeout=HANG) as http:
        assert watch is not None
        first = (await http.post(served.rpc_url, json=v1_send("one"), headers=V1)).json()["result"]["task"]
        task_id = first["id"]
        assert first["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"

        # The second turn streams; the client reads one event and hangs up mid-turn.
        async with httpx.AsyncClient(timeout=HANG) as streamer:
            body = v1_send("two", "SendStreamingMessage", taskId=task_id)
            async with streamer.stream("POST", served.rpc_url, json=body, headers={**V1, "x-test-request": "two"}) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        assert "error" not in json.loads(line[5:])
                        break
        await asyncio.wait_for(gate.held.wait(), HANG)
        await asyncio.wait_for(watch.done["two"].wait(), HANG)  # the server has let go of the stream

        # The third message arrives while the dropped turn still runs; the gate opens as the
        # server reads the task for it, so the old turn ends while the new one is under way.
        store.on_task_read = gate.open.set
        third = v1_send("three", taskId=task_id)
        reply = (await http.post(served.rpc_url, json=third, headers=V1)).json()["result"]["task"]
        final = (await http.post(served.rpc_url, json={"jsonrpc": "2.0", "id": 9, "method": "GetTask", "params": {"id": task_id}}, headers=V1)).json()["result"]

    assert gate.open.is_set()
    assert text_of(reply["status"]["message"]) == "answer to three"
    assert reply["history"][-1]["messageId"] == third["params"]["message"]["messageId"]
    assert [(m["role"], text_of(m)) for m in final["history"]] == [
        ("ROLE_USER", "one"), ("ROLE_AGENT", "answer to one"),
        ("ROLE_USER", "two"), ("ROLE_AGENT", "answer to two"),
        ("ROLE_USER", "three"),
    ]
    assert text_of(final["status"]["message"]) == "answer to three"
    record = await load_run_record(store, task_id)
    assert record is not None and record.shared["seen"] == ["one", "two", "three"]


class SlowFirstAnswer(A2ABaseNode):
    """Holds the first turn until the gate opens, then answers it (pausing or ending the task)."""

    gate: Gate
    end: str

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        self.gate.held.set()
        await self.gate.open.wait()

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared["runs"] = shared.get("runs", 0) + 1
        self.set_final_response_parts(shared, [self.create_text_part(f"hello after {shared['runs']} run")])
        return self.end


@pytest.mark.parametrize("end", ["input-required", "complete"])
async def test_parallel_duplicates_of_a_first_message_all_get_its_answer(end: str) -> None:
    """Clients re-send a first message (same contextId and messageId, no taskId), each copy
    on its own connection: some copies come before the first one has opened the task, some
    while it runs. Every copy gets the one answer, and the flow runs once."""
    wave = 20
    gate = Gate()
    node = SlowFirstAnswer()
    node.gate, node.end = gate, end
    message = {
        "kind": "message", "role": "user", "messageId": str(uuid.uuid4()), "contextId": str(uuid.uuid4()),
        "parts": [{"kind": "text", "text": "hello"}],
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}}
    watch: Watch | None = None

    def wrap(app: Any) -> Any:
        nonlocal watch
        watch = Watch(app)
        return watch

    async def deliver(url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=HANG) as http:  # a connection of its own
            return (await http.post(url, json=body)).json()  # type: ignore[no-any-return]

    async with serving({"slow": Flow(node)}, wrap=wrap) as served:
        assert watch is not None
        early = [asyncio.create_task(deliver(served.rpc_url)) for _ in range(wave)]
        await asyncio.wait_for(gate.held.wait(), HANG)
        await watch.until_read(wave)
        late = [asyncio.create_task(deliver(served.rpc_url)) for _ in range(wave)]
        await watch.until_read(2 * wave)
        gate.open.set()
        answers = await asyncio.gather(*early, *late, return_exceptions=True)
        runs = [run for run in await served.persistence.list_runs() if not run.startswith("a2a-task:")]
        record = await load_run_record(served.persistence, runs[0]) if len(runs) == 1 else None

    hung = [a for a in answers if isinstance(a, BaseException)]
    assert not hung, f"{len(hung)} of {2 * wave} deliveries got no answer: {hung[:3]!r}"
    assert not [a["error"] for a in answers if "error" in a]  # type: ignore[operator]
    assert {a["result"]["id"] for a in answers} == {runs[0]}  # type: ignore[index]
    assert {text_of(a["result"]["status"]["message"]) for a in answers} == {"hello after 1 run"}  # type: ignore[index]
    assert record is not None and record.shared["runs"] == 1
