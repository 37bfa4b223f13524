"""A blocking send's new task runs as a ``DirectTurn``: its events applied in line instead of
through the SDK's producer, consumer and queues. What it stores, pushes and answers must be what
the SDK's own request handler stores, pushes and answers for the same executor; a cancel or a
subscription that reaches the task while it runs must stop or follow it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from a2a.server.agent_execution import (
    AgentExecutor,
    RequestContext,
    SimpleRequestContextBuilder,
)
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import PushNotificationSender, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    Message,
    Part,
    Role,
    SendMessageRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import InvalidAgentResponseError
from google.protobuf.json_format import MessageToDict

from pocketmesh import Flow, InMemoryPersistence
from pocketmesh.a2a import A2ABaseNode
from pocketmesh.a2a.task_events import DirectTurn
from pocketmesh.a2a.task_store import PocketMeshTaskStore

from .conftest import in_process, text_message

Script = Callable[[RequestContext, EventQueue], Awaitable[None]]


class Recorder(PushNotificationSender):
    """Keeps every push the handler sends, as dicts without timestamps."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_notification(self, task_id: str, event: Any) -> None:
        self.sent.append({"task": task_id, "kind": type(event).__name__, **_plain(event)})


class Scripted(AgentExecutor):
    """Runs one script of events; records whether it was cancelled."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.cancelled = False

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        await self.script(context, event_queue)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.cancelled = True
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()


def _plain(proto: Any) -> dict[str, Any]:
    """The proto as a dict, without what is made up anew each run: timestamps, and the ids of
    the agent's messages."""
    data = MessageToDict(proto)
    _drop_made_up(data)
    return data


def _drop_made_up(data: Any) -> None:
    if isinstance(data, dict):
        data.pop("timestamp", None)
        if data.get("role") == "ROLE_AGENT":
            data.pop("messageId", None)
        for value in data.values():
            _drop_made_up(value)
    elif isinstance(data, list):
        for value in data:
            _drop_made_up(value)


def _text(text: str) -> Part:
    return Part(text=text)


async def announce(context: RequestContext, queue: EventQueue, state: int = TaskState.TASK_STATE_WORKING) -> TaskUpdater:
    assert context.message is not None
    await queue.enqueue_event(
        Task(
            id=context.task_id, context_id=context.context_id, status=TaskStatus(state=state),
            history=[context.message], metadata={"skillId": "x"},
        )
    )
    return TaskUpdater(queue, context.task_id or "", context.context_id or "")


async def works_and_completes(context: RequestContext, queue: EventQueue) -> None:
    updater = await announce(context, queue, TaskState.TASK_STATE_SUBMITTED)
    await updater.start_work()
    await updater.add_artifact([_text("one")], artifact_id="a", name="words")
    await updater.add_artifact([_text("two")], artifact_id="a", append=True)
    await updater.update_status(TaskState.TASK_STATE_WORKING, metadata={"step": 2})
    await updater.complete(updater.new_agent_message([_text("done")]))


async def asks_for_input(context: RequestContext, queue: EventQueue) -> None:
    updater = await announce(context, queue)
    await updater.requires_input(updater.new_agent_message([_text("more?")]))


async def replies_with_a_message(context: RequestContext, queue: EventQueue) -> None:
    await queue.enqueue_event(Message(role=Role.ROLE_AGENT, message_id="m-1", context_id=context.context_id, parts=[_text("hi")]))


async def raises_after_announcing(context: RequestContext, queue: EventQueue) -> None:
    updater = await announce(context, queue)
    await updater.add_artifact([_text("partial")], artifact_id="p")
    raise RuntimeError("the agent broke")


async def raises_at_once(context: RequestContext, queue: EventQueue) -> None:
    raise RuntimeError("the agent broke before a task")


async def artifact_first(context: RequestContext, queue: EventQueue) -> None:
    updater = TaskUpdater(queue, context.task_id or "", context.context_id or "")
    await updater.add_artifact([_text("early")], artifact_id="e")
    await updater.complete()


async def status_before_task(context: RequestContext, queue: EventQueue) -> None:
    await TaskUpdater(queue, context.task_id or "", context.context_id or "").start_work()


async def message_after_task(context: RequestContext, queue: EventQueue) -> None:
    await announce(context, queue)
    await queue.enqueue_event(Message(role=Role.ROLE_AGENT, message_id="m-2", parts=[_text("late")]))


async def follows_up_with_an_artifact(context: RequestContext, queue: EventQueue) -> None:
    updater = TaskUpdater(queue, context.task_id or "", context.context_id or "")
    await updater.add_artifact([_text("more")], artifact_id="b")
    await updater.complete(updater.new_agent_message([_text("bye")]))


async def follows_up_working(context: RequestContext, queue: EventQueue) -> None:
    updater = TaskUpdater(queue, context.task_id or "", context.context_id or "")
    assert context.current_task is not None and len(context.current_task.history) == 1
    await updater.start_work()
    await updater.requires_input(updater.new_agent_message([_text("and?")]))


async def follows_up_with_a_message(context: RequestContext, queue: EventQueue) -> None:
    await queue.enqueue_event(Message(role=Role.ROLE_AGENT, message_id="m-3", context_id=context.context_id, parts=[_text("no")]))


class Turns(AgentExecutor):
    """The first turn asks for input; the next runs ``then``."""

    def __init__(self, then: Script) -> None:
        self.then = then

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        await (asks_for_input if context.current_task is None else self.then)(context, event_queue)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def _follow_up(task_id: str) -> SendMessageRequest:
    message = Message(role=Role.ROLE_USER, message_id="msg-2", task_id=task_id, context_id="ctx-1", parts=[_text("again")])
    return SendMessageRequest(message=message)


CARD = AgentCard(name="parity", description="d", version="1", capabilities=AgentCapabilities(streaming=True))


def _request(task_id: str) -> tuple[SendMessageRequest, str]:
    message = Message(role=Role.ROLE_USER, message_id=f"msg-{task_id}", context_id="ctx-1", parts=[_text("go")])
    return SendMessageRequest(message=message), task_id


async def through_the_sdk(script: Script, task_id: str) -> tuple[Any, dict[str, Any] | None, list[dict[str, Any]]]:
    """What the SDK's request handler answers, stores and pushes for ``script``."""
    store, pushes = PocketMeshTaskStore(InMemoryPersistence()), Recorder()
    builder = SimpleRequestContextBuilder(task_id_generator=_Fixed(task_id))
    handler = DefaultRequestHandler(
        agent_executor=Scripted(script), task_store=store, agent_card=CARD, push_sender=pushes, request_context_builder=builder
    )
    params, _ = _request(task_id)
    context = ServerCallContext()
    try:
        answer: Any = _plain(await handler.on_message_send(params, context))
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        answer = (type(error).__name__, str(error))
    await handler.aclose()
    stored = await store.get(task_id, context)
    return answer, None if stored is None else _plain(stored), pushes.sent


async def directly(script: Script, task_id: str) -> tuple[Any, dict[str, Any] | None, list[dict[str, Any]]]:
    """What a ``DirectTurn`` answers, stores and pushes for ``script``."""
    store, pushes = PocketMeshTaskStore(InMemoryPersistence()), Recorder()
    params, _ = _request(task_id)
    context = ServerCallContext()
    request = RequestContext(context, request=params, task_id=task_id, context_id="ctx-1")
    turn = DirectTurn(store, context, task_id, pushes)
    turn.start_new("ctx-1", request.message)
    try:
        result = await turn.run(Scripted(script), request)
        answer: Any = None if result is None else _plain(result)
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        answer = (type(error).__name__, str(error))
    stored = await store.get(task_id, context)
    return answer, None if stored is None else _plain(stored), pushes.sent


class _Fixed:
    def __init__(self, value: str) -> None:
        self.value = value

    def generate(self, context: Any) -> str:
        return self.value


@pytest.mark.parametrize(
    "script",
    [works_and_completes, asks_for_input, replies_with_a_message, raises_after_announcing, raises_at_once, artifact_first],
    ids=lambda s: s.__name__,
)
async def test_a_direct_turn_answers_stores_and_pushes_what_the_sdk_does(script: Script) -> None:
    sdk = await through_the_sdk(script, "t-1")
    direct = await directly(script, "t-1")
    assert direct[0] == sdk[0], "the answer differs"
    assert direct[1] == sdk[1], "the stored task differs"
    assert direct[2] == sdk[2], "the push notifications differ"


@pytest.mark.parametrize(
    "then", [follows_up_with_an_artifact, follows_up_working, follows_up_with_a_message], ids=lambda s: s.__name__
)
async def test_a_direct_follow_up_answers_stores_and_pushes_what_the_sdk_does(then: Script) -> None:
    context = ServerCallContext()
    sdk_store, sdk_pushes = PocketMeshTaskStore(InMemoryPersistence()), Recorder()
    handler = DefaultRequestHandler(
        agent_executor=Turns(then), task_store=sdk_store, agent_card=CARD, push_sender=sdk_pushes,
        request_context_builder=SimpleRequestContextBuilder(task_id_generator=_Fixed("t-4")),
    )
    await handler.on_message_send(_request("t-4")[0], context)
    try:
        sdk_answer: Any = _plain(await handler.on_message_send(_follow_up("t-4"), context))
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        sdk_answer = type(error).__name__
    await handler.aclose()

    store, pushes = PocketMeshTaskStore(InMemoryPersistence()), Recorder()
    executor = Turns(then)
    params = _request("t-4")[0]
    first = DirectTurn(store, context, "t-4", pushes)
    request = RequestContext(context, request=params, task_id="t-4", context_id="ctx-1")
    first.start_new("ctx-1", request.message)
    await first.run(executor, request)
    task = await store.get("t-4", context)
    assert task is not None
    follow_up = RequestContext(context, request=_follow_up("t-4"), task_id="t-4", context_id="ctx-1", task=task)
    second = DirectTurn(store, context, "t-4", pushes)
    second.continue_from(task, follow_up.message)
    try:
        result = await second.run(executor, follow_up)
        answer: Any = None if result is None else _plain(result)
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        answer = type(error).__name__

    assert answer == sdk_answer, "the answer differs"
    assert _plain(await store.get("t-4", context)) == _plain(await sdk_store.get("t-4", context)), "the stored task differs"
    assert pushes.sent == sdk_pushes.sent, "the push notifications differ"


@pytest.mark.parametrize("script", [status_before_task, message_after_task], ids=lambda s: s.__name__)
async def test_an_agent_that_breaks_the_event_rules_is_refused_as_the_sdk_refuses_it(script: Script) -> None:
    answer, stored, _ = await directly(script, "t-2")
    sdk_answer, sdk_stored, _ = await through_the_sdk(script, "t-2")
    assert answer[0] == sdk_answer[0] == InvalidAgentResponseError.__name__
    assert (stored or {}).get("status", {}).get("state") == (sdk_stored or {}).get("status", {}).get("state")


async def test_a_cancel_stops_the_run_and_ends_the_task_canceled() -> None:
    inside, released = asyncio.Event(), asyncio.Event()

    async def waits(context: RequestContext, queue: EventQueue) -> None:
        updater = await announce(context, queue)
        inside.set()
        await released.wait()  # never set: only a cancel ends this run
        await updater.complete()

    store, pushes = PocketMeshTaskStore(InMemoryPersistence()), Recorder()
    params, task_id = _request(str(uuid.uuid4()))
    context = ServerCallContext()
    request = RequestContext(context, request=params, task_id=task_id, context_id="ctx-1")
    executor = Scripted(waits)
    turn = DirectTurn(store, context, task_id, pushes)
    turn.start_new("ctx-1", request.message)
    running = asyncio.create_task(turn.run(executor, request))
    await inside.wait()
    watching = turn.watch(Task())
    first = await anext(watching)
    canceled = await turn.cancel(executor, context)
    answer = await asyncio.wait_for(running, 10)  # a run the cancel did not stop never ends
    followed = [event async for event in watching]
    stored = await store.get(task_id, context)
    assert executor.cancelled
    assert isinstance(first, Task) and first.status.state == TaskState.TASK_STATE_WORKING
    assert [type(e) for e in followed] == [TaskStatusUpdateEvent]
    assert followed[0].status.state == TaskState.TASK_STATE_CANCELED
    assert isinstance(answer, Task)
    assert canceled.status.state == answer.status.state == TaskState.TASK_STATE_CANCELED
    assert stored is not None and stored.status.state == TaskState.TASK_STATE_CANCELED
    assert [p["kind"] for p in pushes.sent] == ["Task", "TaskStatusUpdateEvent"]


async def test_a_watcher_sees_each_event_until_the_turn_pauses() -> None:
    step = asyncio.Event()

    async def slow(context: RequestContext, queue: EventQueue) -> None:
        updater = await announce(context, queue)
        await step.wait()
        await updater.add_artifact([_text("x")], artifact_id="a")
        await updater.requires_input()

    store = PocketMeshTaskStore(InMemoryPersistence())
    params, task_id = _request("t-3")
    context = ServerCallContext()
    request = RequestContext(context, request=params, task_id=task_id, context_id="ctx-1")
    turn = DirectTurn(store, context, task_id, None)
    turn.start_new("ctx-1", request.message)
    running = asyncio.create_task(turn.run(Scripted(slow), request))
    while turn.task is None:
        await asyncio.sleep(0)
    watching = turn.watch(Task())
    first = await anext(watching)
    step.set()
    rest = [event async for event in watching]
    await running
    assert isinstance(first, Task)
    assert [type(e) for e in rest] == [TaskArtifactUpdateEvent, TaskStatusUpdateEvent]
    assert rest[-1].status.state == TaskState.TASK_STATE_INPUT_REQUIRED


class AsksThenWaits(A2ABaseNode):
    """Asks for input on the first turn; the next turn waits for a gate nobody opens."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = asyncio.Event()

    async def execute(self, prep: Any, shared: dict[str, Any], params: dict[str, Any], attempt: int) -> None:
        if shared.get("asked"):
            self.inside.set()
            await asyncio.Event().wait()

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared["asked"] = True
        self.set_final_response_parts(shared, [self.create_text_part("go on")])
        return "input-required"


class HeldTaskWrites(InMemoryPersistence):
    """Holds the next write of a task record until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def save_checkpoint(self, run_id: str, *args: Any, **kwargs: Any) -> Any:
        if self.hold and run_id.startswith("a2a-task"):
            self.hold = False
            self.holding.set()
            await self.release.wait()
        return await super().save_checkpoint(run_id, *args, **kwargs)


async def test_a_cancel_that_comes_while_a_follow_up_is_being_opened_cancels_its_turn() -> None:
    node, store = AsksThenWaits(), HeldTaskWrites()
    async with in_process({"wait": Flow(node)}, persistence=store) as agent:
        first = (await agent.post(_send(text_message("hi")))).json()["result"]
        store.hold = True
        sending = asyncio.create_task(agent.post(_send(text_message("more", task_id=first["id"]))))
        await store.holding.wait()  # the follow-up is putting its message into the task
        canceling = asyncio.create_task(agent.post({"jsonrpc": "2.0", "id": 2, "method": "tasks/cancel", "params": {"id": first["id"]}}))
        store.release.set()
        canceled = (await asyncio.wait_for(canceling, 10)).json()
        reply = (await asyncio.wait_for(sending, 10)).json()
    assert node.inside.is_set(), "the follow-up's turn ran before it was canceled"
    assert canceled["result"]["status"]["state"] == "canceled", canceled
    assert reply["result"]["status"]["state"] == "canceled", reply


def _send(message: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}}
