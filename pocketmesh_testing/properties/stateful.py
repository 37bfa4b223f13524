"""A Hypothesis state machine for A2A conversations with pocketmesh agents.

``a2a_conversation_machine(flows)`` returns a ``RuleBasedStateMachine`` class that serves the
flows in-process (``create_a2a_app`` behind httpx's ``ASGITransport``) and sends, streams,
resumes, redelivers, reads and cancels tasks, checking after every rule that each task's state
and history are what the conversation so far implies: history grows by exactly the messages
sent and the replies, finished tasks refuse messages, and a redelivered message adds nothing.
One event loop serves the whole machine, so paused flows stay alive between rules.

    TestSupport = a2a_conversation_machine({"support": support_flow}).TestCase
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from pocketmesh import BaseNode, InMemoryPersistence

from pocketmesh_testing.properties import profiles  # noqa: F401  (registers the dev and release profiles)
from pocketmesh_testing.properties.failures import failures_dir, write_example

__all__ = ["A2AConversationMachine", "TaskModel", "a2a_conversation_machine"]

FINISHED = frozenset({"completed", "failed", "canceled", "rejected"})
BASE_URL = "http://127.0.0.1:4000"  # the URL create_a2a_app's generated card names

AppFactory = Callable[[Mapping[str, BaseNode], Any], Any]
"""``(flows, persistence) -> ASGI app``; default ``create_a2a_app``."""


@dataclass
class TaskModel:
    """What the conversation so far implies about one task."""

    task_id: str
    state: str
    visible: int
    last_text: str
    last_message_id: str
    turns: list[dict[str, Any]] = field(default_factory=list)
    message_names: dict[str, str] = field(default_factory=dict)


def _visible(view: Any) -> int:
    """Messages a task shows: its history plus the status message (the latest reply), if any."""
    task = view.task
    has_status_message = task is not None and task.status.HasField("message")
    return len(view.history) + (1 if has_status_message else 0)


def _has_reply(view: Any) -> int:
    return 1 if view.task is not None and view.task.status.HasField("message") else 0


class A2AConversationMachine(RuleBasedStateMachine):
    """Conversations with an in-process A2A agent; subclass and set ``flows`` (or use the factory)."""

    flows: Mapping[str, BaseNode] = {}
    skill: str | None = None
    app_factory: AppFactory | None = None
    persistence_factory: Callable[[], Any] = InMemoryPersistence
    agent_ref: str | None = None
    failures_dir: str | Path | None = None

    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        if not self.flows:
            raise TypeError(f"{type(self).__name__}.flows is empty; set it to a dict of skill id -> Flow.")
        self.runner = asyncio.Runner()
        self.model: dict[str, TaskModel] = {}
        self.transcript: list[dict[str, Any]] = []
        self.runner.run(self._open())

    async def _open(self) -> None:
        import httpx

        from pocketmesh.a2a import create_a2a_app, create_a2a_client

        factory = self.app_factory or (lambda flows, persistence: create_a2a_app(flows, persistence=persistence))
        app = factory(self.flows, self.persistence_factory())
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=30)
        self.client = await create_a2a_client(BASE_URL, httpx_client=self.http)

    def teardown(self) -> None:
        try:
            self.runner.run(self._close())
        finally:
            self.runner.close()

    async def _close(self) -> None:
        await self.client.close()
        await self.http.aclose()

    def call(self, coro: Any) -> Any:
        """Run one client call on the machine's loop."""
        return self.runner.run(coro)

    def fail(self, task: TaskModel, message: str) -> None:
        """Fail with ``message``, saving the conversation as a scenario file when a directory is set."""
        directory = failures_dir(self.failures_dir)
        if directory is not None:
            document = self.scenario(task)
            note = write_example(directory, f"{type(self).__name__}-conversation", document)
            if document.get("agent"):
                message += f"\n  conversation saved to {note}; replay it with: pocketmesh replay {note}"
            else:
                message += (f"\n  conversation saved to {note}, but no import path for the flows was found: pass "
                            f"agent_ref='module:flows' to a2a_conversation_machine to make it replayable")
        raise AssertionError(message)

    def scenario(self, task: TaskModel) -> dict[str, Any]:
        """The failing task's turns as a scenario file (``user`` + ``message_id`` + ``expect`` per turn)."""
        from pocketmesh_testing.properties.references import import_path_of

        return {
            "name": f"{type(self).__name__} conversation",
            "agent": self.agent_ref or import_path_of(self.flows),
            "skill": self.skill or next(iter(self.flows)),
            "turns": task.turns,
        }

    def _turn(self, task: TaskModel, text: str, message_id: str, state: str, *, stream: bool = False) -> None:
        """Note a turn of ``task`` as a scenario turn; message ids become m1, m2, ... so a redelivery reads as one."""
        short = task.message_names.setdefault(message_id, f"m{len(task.message_names) + 1}")
        turn: dict[str, Any] = {"user": text, "message_id": short}
        if stream:
            turn["stream"] = True
        turn["expect"] = {"state": state}
        task.turns.append(turn)

    # -- rules ------------------------------------------------------------------------------------

    @rule(target=tasks, text=st.sampled_from(("hello", "yes", "no", "bye")))
    def start(self, text: str) -> str:
        """Send a first message: a new task."""
        message_id = str(uuid.uuid4())
        view = self.call(self.client.send_message(text, skill=self.skill, message_id=message_id))
        task = TaskModel(view.task_id, view.state, 0, text, message_id)
        self.model[view.task_id] = task
        self._turn(task, text, message_id, view.state)
        if _visible(view) != 1 + _has_reply(view):
            self.fail(task, f"a new task shows {_visible(view)} message(s) after one message and "
                            f"{_has_reply(view)} reply: {view.history!r:.300}")
        task.visible = _visible(view)
        return view.task_id

    @rule(task_id=tasks, text=st.sampled_from(("hello", "yes", "no", "bye")), stream=st.booleans())
    def send(self, task_id: str, text: str, stream: bool) -> None:
        """Send (or stream) a follow-up: resumes a paused task; a finished task must refuse it."""
        task = self.model[task_id]
        message_id = str(uuid.uuid4())
        try:
            if stream:
                async def collect() -> list[Any]:
                    return [e async for e in self.client.send_message_stream(text, task_id=task_id, message_id=message_id)]

                events = self.call(collect())
                states = [e.state for e in events if e.state]
            else:
                states = [self.call(self.client.send_message(text, task_id=task_id, message_id=message_id)).state]
        except Exception as error:
            if task.state not in FINISHED:
                self.fail(task, f"task {task_id} in state {task.state!r} refused a message: {type(error).__name__}: {error}")
            return
        if task.state in FINISHED:
            self.fail(task, f"task {task_id} had finished ({task.state}) but accepted {text!r} (states {states})")
        view = self.call(self.client.get_task(task_id))
        if states and states[-1] != view.state:
            self.fail(task, f"the reply to {text!r} said {states[-1]!r} but the task is {view.state!r}")
        self._turn(task, text, message_id, view.state, stream=stream)
        expected = task.visible + 1 + _has_reply(view)
        if _visible(view) != expected:
            self.fail(task, f"task {task_id} shows {_visible(view)} message(s) after a turn, expected {expected} "
                            f"(one more message and {_has_reply(view)} reply)")
        task.state, task.visible, task.last_text, task.last_message_id = view.state, _visible(view), text, message_id

    @rule(task_id=tasks)
    def redeliver(self, task_id: str) -> None:
        """Deliver the task's last message again (same messageId): nothing may change."""
        task = self.model[task_id]
        try:
            self.call(self.client.send_message(task.last_text, task_id=task_id, message_id=task.last_message_id))
        except Exception:
            pass  # a finished task refusing the repeat is fine; what matters is what it shows
        view = self.call(self.client.get_task(task_id))
        self._turn(task, task.last_text, task.last_message_id, task.state)
        if view.state != task.state or _visible(view) != task.visible:
            self.fail(task, f"redelivering message {task.last_message_id} changed task {task_id}: state "
                            f"{task.state!r} -> {view.state!r}, messages {task.visible} -> {_visible(view)}; "
                            f"the same message must be applied once")

    @rule(task_id=tasks)
    def cancel(self, task_id: str) -> None:
        """Cancel: an unfinished task ends canceled; a finished one refuses and stays as it is."""
        task = self.model[task_id]
        try:
            view = self.call(self.client.cancel_task(task_id))
        except Exception as error:
            if task.state not in FINISHED:
                self.fail(task, f"canceling task {task_id} in state {task.state!r} was refused: {error}")
            return
        if task.state in FINISHED:
            self.fail(task, f"task {task_id} had finished ({task.state}) but was canceled")
        if view.state != "canceled":
            self.fail(task, f"canceled task {task_id} is {view.state!r}, not 'canceled'")
        task.state, task.visible = view.state, _visible(view)

    @precondition(lambda self: bool(self.model))
    @invariant()
    def tasks_match_the_conversation(self) -> None:
        """Every task reads back in the state and with the history the conversation implies."""
        for task in self.model.values():
            view = self.call(self.client.get_task(task.task_id))
            if view.state != task.state or _visible(view) != task.visible:
                self.fail(task, f"task {task.task_id} reads back {view.state!r} with {_visible(view)} message(s); "
                                f"the conversation implies {task.state!r} with {task.visible}")


def a2a_conversation_machine(
    flows: Mapping[str, BaseNode],
    *,
    skill: str | None = None,
    app_factory: AppFactory | None = None,
    persistence_factory: Callable[[], Any] = InMemoryPersistence,
    agent_ref: str | None = None,
    failures_dir: str | Path | None = None,
) -> type[A2AConversationMachine]:
    """A state machine class for conversations with ``flows`` served over A2A in-process."""
    if not isinstance(flows, Mapping) or not flows or not all(isinstance(f, BaseNode) for f in flows.values()):
        raise TypeError(f"flows must be a non-empty dict of skill id -> Flow, got {flows!r:.80}.")
    if skill is not None and skill not in flows:
        raise ValueError(f"skill {skill!r} is not one of the flows' skills {sorted(flows)!r}.")
    attrs = {
        "flows": dict(flows), "skill": skill, "app_factory": staticmethod(app_factory) if app_factory else None,
        "persistence_factory": staticmethod(persistence_factory), "agent_ref": agent_ref, "failures_dir": failures_dir,
    }
    return type("A2AConversation", (A2AConversationMachine,), attrs)
