"""Push notifications: configs over every transport, delivery to a loopback receiver, the target
policy, retries with backoff, configs kept per task and owner on every backend and across restarts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from a2a.types import Task, TaskPushNotificationConfig, TaskState, TaskStatus
from a2a.utils.errors import InvalidParamsError, PushNotificationNotSupportedError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pocketmesh import InMemoryPersistence, SQLitePersistence
from pocketmesh.a2a import PushPolicy, RetryPolicy, create_a2a_client
from pocketmesh.a2a.push import PushConfigStore, PushSender

from ..conftest import FakeClock
from .conftest import free_port, make_flows, serving
from .test_task_store import context

TRANSPORTS = ["JSONRPC", "HTTP+JSON", "GRPC"]


@dataclass
class Call:
    """One request the receiver got."""

    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """A webhook on 127.0.0.1 that records each call and answers the statuses it is given (then 200)."""

    def __init__(self, statuses: list[int] | None = None, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.answer_headers = headers or {}
        self.calls: list[Call] = []
        self._arrived = asyncio.Condition()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def endpoint(self, request: Request) -> Response:
        call = Call({k.lower(): v for k, v in request.headers.items()}, await request.json())
        async with self._arrived:
            self.calls.append(call)
            self._arrived.notify_all()
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status, headers=self.answer_headers if status != 200 else None)

    async def wait_for(self, count: int) -> list[Call]:
        """The first ``count`` calls, once they have arrived."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.calls) >= count), 10)
        return self.calls[:count]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver served by uvicorn on 127.0.0.1."""
    hook = Receiver()
    app = Starlette(routes=[Route("/hook", hook.endpoint, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=hook.port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.005)
    yield hook
    server.should_exit = True
    await asyncio.wait_for(task, 10)


def state_of(call: Call) -> str:
    """The task state a notification reports."""
    body = call.body
    return str(body["task"]["status"]["state"] if "task" in body else body["statusUpdate"]["status"]["state"])


# -- over every transport, through the app -----------------------------------------------------------


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each transport in turn."""
    return str(request.param)


async def test_configs_are_set_read_listed_and_deleted(transport: str) -> None:
    async with serving(make_flows(), grpc_port=free_port(), push_allowed_hosts=["127.0.0.1"]) as server:
        async with await create_a2a_client(server.base_url, transport=transport) as client:
            task = await client.send_message("a", skill="collect")
            stored = await client.set_push_config(
                task.task_id, "http://127.0.0.1:9/hook", config_id="p1", token="t-1",
                authentication={"scheme": "Bearer", "credentials": "c-1"},
            )
            await client.set_push_config(task.task_id, "http://127.0.0.1:9/other", config_id="p2")
            got = await client.get_push_config(task.task_id, "p1")
            listed = await client.list_push_configs(task.task_id)
            await client.delete_push_config(task.task_id, "p1")
            await client.delete_push_config(task.task_id, "p1")  # gone already: not an error
            after = await client.list_push_configs(task.task_id)
    assert stored == got == {
        "id": "p1", "taskId": task.task_id, "url": "http://127.0.0.1:9/hook", "token": "t-1",
        "authentication": {"scheme": "Bearer", "credentials": "c-1"},
    }
    assert [c["id"] for c in listed] == ["p1", "p2"]
    assert [c["id"] for c in after] == ["p2"]


async def test_each_task_event_reaches_a_loopback_receiver_allowed_explicitly(receiver: Receiver, transport: str) -> None:
    push = {"url": receiver.url, "token": "tok-1", "authentication": {"scheme": "Bearer", "credentials": "cred-1"}}
    async with serving(make_flows(), grpc_port=free_port(), push_allowed_hosts=["127.0.0.1"]) as server:
        async with await create_a2a_client(server.base_url, transport=transport) as client:
            first = await client.send_message("a", skill="collect", push_config=push)
            calls = await receiver.wait_for(2)
            await client.send_message("b", task_id=first.task_id)
            calls = await receiver.wait_for(4)
    # Each blocking turn reads working while it runs, then waits for input again.
    assert [state_of(c) for c in calls] == [
        "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED",
    ]
    assert {c.headers["x-a2a-notification-token"] for c in calls} == {"tok-1"}
    assert {c.headers["authorization"] for c in calls} == {"Bearer cred-1"}
    assert calls[0].body["task"]["id"] == first.task_id
    assert calls[3].body["statusUpdate"]["status"]["message"]["parts"] == [{"text": "seen 2"}]


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[fd00::1]/hook", "http://hooks.invalid/hook"],
)
async def test_a_private_target_is_refused_with_a_clear_error(url: str, transport: str) -> None:
    async with serving(make_flows(), grpc_port=free_port()) as server:
        async with await create_a2a_client(server.base_url, transport=transport) as client:
            task = await client.send_message("a", skill="collect")
            with pytest.raises(InvalidParamsError, match="refused: .*(private|link-local|never resolves)"):
                await client.set_push_config(task.task_id, url, config_id="p1")
            assert await client.list_push_configs(task.task_id) == []
            runs_before = sorted(await server.persistence.list_runs())
            with pytest.raises(InvalidParamsError, match="refused"):
                await client.send_message("b", skill="collect", push_config={"url": url})
        assert sorted(await server.persistence.list_runs()) == runs_before  # no task, no run, no config


async def test_a_card_without_push_notifications_refuses_configs(transport: str) -> None:
    options = {"capabilities": {"pushNotifications": False}}
    async with serving(make_flows(), grpc_port=free_port(), card_options=options) as server:
        async with await create_a2a_client(server.base_url, transport=transport) as client:
            task = await client.send_message("a", skill="collect")
            with pytest.raises(PushNotificationNotSupportedError):
                await client.set_push_config(task.task_id, "http://127.0.0.1:9/hook")


async def test_loopback_is_refused_unless_allowed(receiver: Receiver) -> None:
    async with serving(make_flows()) as server, await create_a2a_client(server.base_url) as client:
        task = await client.send_message("a", skill="collect")
        with pytest.raises(InvalidParamsError, match="loopback address.*--push-allow-host 127.0.0.1"):
            await client.set_push_config(task.task_id, receiver.url)
    async with serving(make_flows(), allow_private_push_targets=True) as server, await create_a2a_client(server.base_url) as client:
        task = await client.send_message("a", skill="collect", push_config={"url": receiver.url})
        assert state_of((await receiver.wait_for(1))[0]) == "TASK_STATE_WORKING"


async def test_configs_survive_a_restart(receiver: Receiver, tmp_path: Path) -> None:
    db = tmp_path / "agent.sqlite"
    async with serving(make_flows(), SQLitePersistence(db), push_allowed_hosts=["127.0.0.1"]) as server:
        async with await create_a2a_client(server.base_url) as client:
            task = await client.send_message("a", skill="collect")
            await client.set_push_config(task.task_id, receiver.url, config_id="p1", token="kept")
    async with serving(make_flows(), SQLitePersistence(db), push_allowed_hosts=["127.0.0.1"]) as server:
        async with await create_a2a_client(server.base_url) as client:
            assert [c["token"] for c in await client.list_push_configs(task.task_id)] == ["kept"]
            await client.send_message("b", task_id=task.task_id)
            calls = await receiver.wait_for(2)
    assert [(state_of(c), c.headers["x-a2a-notification-token"]) for c in calls] == [
        ("TASK_STATE_WORKING", "kept"), ("TASK_STATE_INPUT_REQUIRED", "kept"),
    ]


# -- the sender: retries, backoff, addresses ---------------------------------------------------------


def a_task(task_id: str = "t-1", state: int = TaskState.TASK_STATE_WORKING) -> Task:
    return Task(id=task_id, context_id="c-1", status=TaskStatus(state=state))


async def sender_for(url: str, policy: PushPolicy, **options: Any) -> PushSender:
    """A sender whose store holds one config of task ``t-1``: ``url``, token ``tok``."""
    store = PushConfigStore(InMemoryPersistence(), policy)
    await store.set_info("t-1", TaskPushNotificationConfig(id="p1", url=url, token="tok"), context("alice"))
    return PushSender(store, policy, **options)


async def test_failed_deliveries_are_retried_with_growing_waits(receiver: Receiver, fake_clock: FakeClock) -> None:
    receiver.statuses = [503, 502, 500]
    sender = await sender_for(receiver.url, PushPolicy(allowed_hosts=["127.0.0.1"]))
    await sender.send_notification("t-1", a_task())
    await sender.drain()
    assert len(receiver.calls) == 4
    assert fake_clock.waits == [0.5, 1.0, 2.0]
    assert all(c.body == receiver.calls[0].body and c.headers["x-a2a-notification-token"] == "tok" for c in receiver.calls)


async def test_a_receiver_that_keeps_failing_is_given_up_on(receiver: Receiver, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [503] * 10
    sender = await sender_for(receiver.url, PushPolicy(allowed_hosts=["127.0.0.1"]), retry=RetryPolicy(attempts=3, first_delay=1, factor=3))
    with caplog.at_level(logging.ERROR, logger="pocketmesh.a2a"):
        await sender.send_notification("t-1", a_task())
        await sender.drain()
    assert len(receiver.calls) == 3
    assert fake_clock.waits == [1.0, 3.0]
    assert "given up after 3 attempts: HTTP 503" in caplog.text


async def test_a_refusal_is_not_retried_and_retry_after_is_honoured(receiver: Receiver, fake_clock: FakeClock) -> None:
    receiver.statuses, receiver.answer_headers = [429, 400], {"Retry-After": "7"}
    sender = await sender_for(receiver.url, PushPolicy(allowed_hosts=["127.0.0.1"]))
    await sender.send_notification("t-1", a_task())
    await sender.drain()
    assert len(receiver.calls) == 2  # 429, then 400: the receiver refused, no third try
    assert fake_clock.waits == [7.0]


async def test_events_reach_a_receiver_in_order_while_one_is_retried(receiver: Receiver, fake_clock: FakeClock) -> None:
    receiver.statuses = [503]
    sender = await sender_for(receiver.url, PushPolicy(allowed_hosts=["127.0.0.1"]))
    for state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED):
        await sender.send_notification("t-1", a_task(state=state))
    await sender.drain()
    assert [state_of(c) for c in receiver.calls] == [
        "TASK_STATE_SUBMITTED", "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED",
    ]


class Resolver:
    """A name service for the tests: each lookup of a name gives its next answer."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {k.replace("_", "."): list(v) for k, v in answers.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise OSError(f"{host} does not resolve")
        return answers.pop(0) if len(answers) > 1 else answers[0]


async def test_delivery_connects_to_the_address_it_checked(receiver: Receiver) -> None:
    resolver = Resolver(hooks_test=[["127.0.0.1"]])
    url = receiver.url.replace("127.0.0.1", "hooks.test")
    sender = await sender_for(url, PushPolicy(allowed_hosts=["127.0.0.1"], resolver=resolver))
    await sender.send_notification("t-1", a_task())
    await sender.drain()
    (call,) = receiver.calls
    assert call.headers["host"] == f"hooks.test:{receiver.port}"  # the name, reached at the checked address
    assert resolver.lookups == ["hooks.test", "hooks.test"]  # stored, then delivered: checked each time


async def test_a_name_that_turns_private_is_refused_at_delivery(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    resolver = Resolver(hooks_test=[["127.0.0.1"], ["10.0.0.9"]])
    sender = await sender_for(f"http://hooks.test:{receiver.port}/hook", PushPolicy(allowed_hosts=["127.0.0.1"], resolver=resolver))
    with caplog.at_level(logging.ERROR, logger="pocketmesh.a2a"):
        await sender.send_notification("t-1", a_task())
        await sender.drain()
    assert receiver.calls == []
    assert "resolves to 10.0.0.9, which is a private address" in caplog.text


async def test_a_name_that_does_not_resolve_yet_is_stored_and_retried(fake_clock: FakeClock) -> None:
    resolver = Resolver()
    policy = PushPolicy(resolver=resolver)
    sender = await sender_for("https://hooks.test/a2a", policy, retry=RetryPolicy(attempts=2))
    await sender.send_notification("t-1", a_task())
    await sender.drain()
    assert resolver.lookups == ["hooks.test"] * 3 and fake_clock.waits == [0.5]
