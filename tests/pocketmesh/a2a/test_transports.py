"""Every A2A operation over each of the three transports, on real sockets (uvicorn and grpc.aio on 127.0.0.1).

One parametrized suite: JSON-RPC, HTTP+JSON and gRPC must behave the same, because all three
go through the one request handler (auth, owners, turn locks, redelivery).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from a2a.client.errors import A2AClientError
from a2a.utils.errors import TaskNotFoundError

from pocketmesh import Flow, load_run_record
from pocketmesh.a2a import A2ABaseNode, BearerAuth, create_a2a_client

from .conftest import Served, free_port, make_flows, serving

TRANSPORTS = ["JSONRPC", "HTTP+JSON", "GRPC"]


class GateNode(A2ABaseNode):
    """Holds its turn until the test opens the gate; tells the test when it is inside."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.task_ids: list[str] = []

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        self.task_ids.append(shared["__a2a_task_id"])
        self.entered.set()
        await self.gate.wait()

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        self.set_final_response_parts(shared, [self.create_text_part("through")])
        return "complete"


class AskThenGateNode(GateNode):
    """Asks for input on the first turn; holds the next turn at the gate."""

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        if shared.get("asked"):
            await super().execute(prep, shared, params, attempt)

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        if not shared.get("asked"):
            shared["asked"] = True
            self.set_final_response_parts(shared, [self.create_text_part("ready")])
            return "input-required"
        return await super().finalize(shared, prep, result, params)


class CountNode(A2ABaseNode):
    """Counts its runs (the side effect a redelivery must not repeat) and asks for more."""

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0
        self.inside = 0
        self.most_inside = 0

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        self.runs += 1
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            # Let other requests in, if the server would let two turns of one task overlap.
            for _ in range(5):
                await asyncio.sleep(0)
        finally:
            self.inside -= 1

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared.setdefault("seen", []).append(shared["input"])
        self.set_final_response_parts(shared, [self.create_text_part(f"run {self.runs}")])
        return "input-required"


async def _all(events: Any) -> list[Any]:
    return [event async for event in events]


class Setup:
    """The served flows and the nodes a test watches."""

    def __init__(self) -> None:
        self.gate = GateNode()
        self.count = CountNode()
        self.second = AskThenGateNode()
        self.flows = {**make_flows(), "gate": Flow(self.gate), "count": Flow(self.count), "second": Flow(self.second)}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each transport in turn."""
    return str(request.param)


@pytest.fixture
def setup() -> Setup:
    """Fresh flows and nodes per test."""
    return Setup()


@pytest_asyncio.fixture
async def server(setup: Setup) -> AsyncIterator[Served]:
    """All three transports on free ports of 127.0.0.1."""
    async with serving(setup.flows, grpc_port=free_port()) as served:
        yield served


async def test_the_card_declares_the_three_transports(server: Served) -> None:
    async with await create_a2a_client(server.base_url) as client:
        interfaces = [(i.protocol_binding, i.url) for i in client.card.supported_interfaces]
        assert client.transport == "JSONRPC"  # the first the card lists
    port = server.base_url.rsplit(":", 1)[1]
    assert interfaces[0] == ("JSONRPC", f"{server.base_url}/a2a")
    assert interfaces[1] == ("HTTP+JSON", f"{server.base_url}/a2a/rest")
    assert interfaces[2][0] == "GRPC" and interfaces[2][1].startswith("127.0.0.1:") and not interfaces[2][1].endswith(port)


async def test_send(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        assert client.transport == transport
        reply = await client.send_message("hello")
    assert (reply.state, reply.text, reply.kind) == ("completed", "echo: hello", "task")
    record = await load_run_record(server.persistence, reply.task_id)
    assert record is not None and record.shared["input"] == "hello"


async def test_stream(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        events = [e async for e in client.send_message_stream("one two three", skill="chunks")]
    assert [(e.kind, e.state) for e in events] == [
        ("task", "submitted"),
        ("status-update", "working"),
        ("artifact-update", None),
        ("artifact-update", None),
        ("artifact-update", None),
        ("status-update", "completed"),
    ]
    assert [e.text for e in events[2:5]] == ["one", "two", "three"]
    assert [e.append for e in events[2:5]] == [False, True, True]


async def test_get_and_list(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        asked = await client.send_message("a", skill="collect", context_id=f"ctx-{uuid.uuid4()}")
        done = await client.send_message("b")
        got = await client.get_task(asked.task_id)
        assert (got.state, got.text) == ("input-required", "seen 1")
        everything = await client.list_tasks()
        waiting = await client.list_tasks(state="input-required")
        in_context = await client.list_tasks(context_id=asked.context_id)
    assert {asked.task_id, done.task_id} <= {t.task_id for t in everything.tasks}
    assert asked.task_id in {t.task_id for t in waiting.tasks} and done.task_id not in {t.task_id for t in waiting.tasks}
    assert [t.task_id for t in in_context.tasks] == [asked.task_id]


async def test_cancel(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        first = await client.send_message("a", skill="collect")
        canceled = await client.cancel_task(first.task_id)
        after = await client.get_task(first.task_id)
    assert (canceled.state, after.state) == ("canceled", "canceled")
    record = await load_run_record(server.persistence, first.task_id)
    assert record is not None and record.status == "canceled"


async def test_subscribe_follows_a_running_task_to_its_end(server: Served, setup: Setup, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        sending = asyncio.create_task(client.send_message("go", skill="gate"))
        await setup.gate.entered.wait()
        events = client.subscribe(setup.gate.task_ids[0])
        first = await anext(events)
        assert (first.kind, first.task_id) == ("task", setup.gate.task_ids[0])
        assert first.state in ("submitted", "working")
        setup.gate.gate.set()
        rest = [e async for e in events]
        reply = await sending
    assert (rest[-1].kind, rest[-1].state, rest[-1].text) == ("status-update", "completed", "through")
    assert (reply.state, reply.text) == ("completed", "through")


async def test_cancel_stops_a_running_blocking_send(server: Served, setup: Setup, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        sending = asyncio.create_task(client.send_message("go", skill="gate"))
        await setup.gate.entered.wait()
        task_id = setup.gate.task_ids[0]
        assert (await client.get_task(task_id)).state == "working"
        canceled = await client.cancel_task(task_id)
        reply = await asyncio.wait_for(sending, 10)  # the gate never opens: only the cancel ends the turn
        after = await client.get_task(task_id)
    assert (canceled.state, reply.state, after.state) == ("canceled", "canceled", "canceled")
    # Stopped inside its first step, the run saved nothing (the node never finished).
    assert await load_run_record(server.persistence, task_id) is None


async def test_a_running_follow_up_is_followed_and_canceled(server: Served, setup: Setup, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        first = await client.send_message("hi", skill="second")
        assert first.state == "input-required"
        sending = asyncio.create_task(client.send_message("go on", task_id=first.task_id))
        await setup.second.entered.wait()
        events = client.subscribe(first.task_id)
        shown = await anext(events)
        canceled = await client.cancel_task(first.task_id)
        # The gate never opens: only the cancel ends the turn, and the subscription with it.
        rest = await asyncio.wait_for(_all(events), 10)
        reply = await asyncio.wait_for(sending, 10)
    assert (shown.kind, shown.state) == ("task", "working")
    assert [(e.kind, e.state) for e in rest] == [("status-update", "canceled")]
    assert (canceled.state, reply.state) == ("canceled", "canceled")
    record = await load_run_record(server.persistence, first.task_id)
    assert record is not None and record.status == "canceled"


async def test_multi_turn_input_required(server: Served, transport: str) -> None:
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        one = await client.send_message("Alice", skill="greeting")
        two = await client.send_message("the weather", task_id=one.task_id)
        three = await client.send_message("bye", task_id=one.task_id)
    assert [(r.state, r.text) for r in (one, two, three)] == [
        ("input-required", "Hello, Alice! What's on your mind?"),
        ("input-required", 'Got it: "the weather". Anything else?'),
        ("completed", "Goodbye, Alice!"),
    ]
    assert len({one.task_id, two.task_id, three.task_id}) == 1


async def test_a_redelivered_message_is_applied_once(server: Served, setup: Setup, transport: str) -> None:
    context_id, first_id, follow_id = f"ctx-{uuid.uuid4()}", f"m-{uuid.uuid4()}", f"m-{uuid.uuid4()}"
    async with await create_a2a_client(server.base_url, transport=transport) as client:
        first = await client.send_message("a", skill="count", context_id=context_id, message_id=first_id)
        again = await client.send_message("a", skill="count", context_id=context_id, message_id=first_id)
        follow = await client.send_message("b", task_id=first.task_id, message_id=follow_id)
        follow_again = await client.send_message("b", task_id=first.task_id, message_id=follow_id)
    assert again.task_id == first.task_id and (again.text, follow_again.text) == ("run 1", "run 2")
    assert follow.text == "run 2"
    assert setup.count.runs == 2
    record = await load_run_record(server.persistence, first.task_id)
    assert record is not None and record.shared["seen"] == ["a", "b"]


async def test_a_message_redelivered_over_other_transports_is_applied_once(server: Served, setup: Setup) -> None:
    context_id, message_id = f"ctx-{uuid.uuid4()}", f"m-{uuid.uuid4()}"
    replies = []
    for transport in TRANSPORTS:
        async with await create_a2a_client(server.base_url, transport=transport) as client:
            replies.append(await client.send_message("a", skill="count", context_id=context_id, message_id=message_id))
    assert len({r.task_id for r in replies}) == 1
    assert [r.text for r in replies] == ["run 1"] * 3
    assert setup.count.runs == 1


async def test_turns_of_one_task_never_overlap_across_transports(server: Served, setup: Setup) -> None:
    clients = [await create_a2a_client(server.base_url, transport=t) for t in TRANSPORTS]
    try:
        first = await clients[0].send_message("start", skill="count")
        replies = await asyncio.gather(
            *(c.send_message(f"from {c.transport}", task_id=first.task_id) for c in clients for _ in range(2))
        )
    finally:
        for client in clients:
            await client.close()
    assert setup.count.most_inside == 1
    assert sorted(r.text for r in replies) == [f"run {n}" for n in range(2, 8)]
    record = await load_run_record(server.persistence, first.task_id)
    assert record is not None and sorted(record.shared["seen"][1:]) == sorted(f"from {t}" for t in TRANSPORTS for _ in range(2))


@pytest_asyncio.fixture
async def guarded(setup: Setup) -> AsyncIterator[Served]:
    """All three transports behind bearer tokens of two owners."""
    auth = BearerAuth(tokens={"alice-token": "alice", "bob-token": "bob"})
    async with serving(setup.flows, grpc_port=free_port(), auth=auth) as served:
        yield served


async def test_auth_is_required(guarded: Served, transport: str) -> None:
    async with await create_a2a_client(guarded.base_url, transport=transport) as anonymous:
        with pytest.raises(A2AClientError, match="401|UNAUTHENTICATED"):
            await anonymous.send_message("hello")
    async with await create_a2a_client(guarded.base_url, transport=transport, auth_token="wrong") as stranger:
        with pytest.raises(A2AClientError, match="401|UNAUTHENTICATED"):
            await stranger.list_tasks()
    assert await guarded.persistence.list_runs() == []


async def test_an_owner_sees_only_its_own_tasks(guarded: Served, transport: str) -> None:
    async with (
        await create_a2a_client(guarded.base_url, transport=transport, auth_token="alice-token") as alice,
        await create_a2a_client(guarded.base_url, transport=transport, auth_token="bob-token") as bob,
    ):
        task = await alice.send_message("a", skill="collect")
        for attempt in (bob.get_task(task.task_id), bob.cancel_task(task.task_id), bob.list_push_configs(task.task_id)):
            with pytest.raises(TaskNotFoundError):
                await attempt
        assert (await bob.list_tasks()).tasks == []
        assert [t.task_id for t in (await alice.list_tasks()).tasks] == [task.task_id]
        with pytest.raises(TaskNotFoundError):
            await bob.send_message("hijack", task_id=task.task_id)
        assert (await alice.get_task(task.task_id)).text == "seen 1"
