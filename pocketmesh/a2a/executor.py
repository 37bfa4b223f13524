"""``PocketMeshAgentExecutor``: runs PocketMesh flows behind the SDK's request handler.

One A2A task is one flow run (run id = task id). A message to a task whose run is paused
resumes it; the reply is built from the final response parts the run leaves in shared state.
A streamed send reports a working status per node; a blocking send, which answers with the
final task only, reports one as its run starts (each is one more task save).

A failed turn tells the client only that it failed, with an error id; the exception text and
traceback go to the server log under that id (``expose_errors=True`` sends the text too, for
development). Artifacts a node emits as a plain JSON dict (no ``parts``) reach the client as
one data part, so a flow behaves the same in-process and served.

Each message is applied once, even when a client sends it again because a server died before
answering: the task's history names the messages it has, and the run record names the last
message a turn was run for, so a message whose turn finished (but whose answer was never
saved to the task) is answered from the record, and one whose turn was cut short continues
where the run's last checkpoint left it. Turns of one task are serialized by
:class:`~pocketmesh.a2a.locks.TurnLocks`, across replicas too. How a turn answers — through its
task, or with a bare message, ``rejected`` or ``auth-required`` as a node chose — is
:class:`~pocketmesh.a2a.replies.TurnReply`'s business.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Task, TaskState, TaskStatus

from ..errors import PocketMeshError, RunLockLostError, RunNotFoundError
from ..log import new_error_id
from ..node import BaseNode
from ..flow import Flow, run_record
from ..runs import RunRecord, cancel_run, load_run_record
from . import keys
from .convert import part_from_dict
from .locks import TurnLocks
from .redelivery import (
    UNANSWERED,
    applied,
    cut_short,
    first_message_task_id,
    noted_unanswered,
    unanswered,
)
from .replies import TurnReply, may_reply_with_message
from .turn_state import NEW_TASK_ID, TURN_OPENED, Earlier, LastRecords, turn_shared

if TYPE_CHECKING:
    from ..persistence.base import Persistence
    from ..results import StatusUpdate

logger = logging.getLogger("pocketmesh.a2a")

_STREAMING_METHODS = frozenset({"SendStreamingMessage", "message/stream"})
_UNFINISHED_TURN = frozenset({TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING})
def _skill_in(holder: Message | Task | None) -> str | None:
    # Read straight from the Struct: a MessageToDict per request costs more than the lookup.
    if holder is None or not holder.HasField("metadata"):
        return None
    value = holder.metadata.fields.get("skillId")
    if value is None or value.WhichOneof("kind") != "string_value":
        return None
    return value.string_value or None


def message_skill(message: Message | None) -> str | None:
    """The ``skillId`` a message's metadata asks for, if any."""
    return _skill_in(message)


def task_skill(task: Task | None) -> str | None:
    """The skill a task was started with (kept in its metadata)."""
    return _skill_in(task)


class PocketMeshAgentExecutor(AgentExecutor):
    """Runs the flow of the requested skill for each message, pausing and resuming per task."""

    def __init__(
        self,
        flows: Mapping[str, BaseNode],
        persistence: Persistence,
        *,
        turns: TurnLocks | None = None,
        expose_errors: bool = False,
    ) -> None:
        if not flows:
            raise ValueError("flows must name at least one flow, e.g. flows={'greet': Flow(GreetNode())}.")
        self.flows = dict(flows)
        self.persistence = persistence
        self.default_skill = next(iter(self.flows))
        self.turns = turns if turns is not None else TurnLocks(persistence)
        self.expose_errors = expose_errors
        self.last_records = LastRecords()
        """Each paused task's run record as its last turn left it (see :mod:`.turn_state`)."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Apply one incoming message to its task: start, resume, or re-answer a repeat."""
        message = context.message
        task_id, context_id = context.task_id, context.context_id
        if message is None or not task_id or not context_id:
            raise ValueError(f"execute needs a message with task and context ids, got {message!r:.80}")
        # The request handler already holds this turn (the lock is re-entrant within it); the
        # executor takes it too for callers that drive it directly. A lost cross-process lock
        # stops the turn here, before it writes anything more.
        async with self.turns.hold(task_id) as turn, turn.guard():
            task = context.current_task
            if task is not None and task.context_id:
                # A follow-up naming only its task gets a fresh context id from the SDK; the
                # task's own context id is the right one, for the events and for history.
                context_id = task.context_id
                message.context_id = context_id
            await self._apply(context, message, task_id, context_id, event_queue)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Mark the task's run canceled and report the task canceled."""
        task_id = context.task_id or ""
        self.last_records.take(task_id)
        try:
            await cancel_run(self.persistence, task_id)
        except RunNotFoundError:
            pass  # canceled before its first step was saved: nothing to mark
        context_id = context.context_id or (context.current_task.context_id if context.current_task else "")
        await TaskUpdater(event_queue, task_id, context_id).cancel()

    async def _apply(
        self, context: RequestContext, message: Message, task_id: str, context_id: str, queue: EventQueue
    ) -> None:
        task = context.current_task
        turn = TurnReply(queue, task_id, context_id)
        updater = turn.updater
        skill_id = message_skill(message) or task_skill(task) or self.default_skill
        # A working status per node is for whoever watches the stream; a blocking send only
        # returns the final task, and each status is one more task save, so it reads working
        # once, for whoever looks at the task meanwhile (GetTask, ListTasks).
        state = context.call_context.state if context.call_context is not None else {}
        streaming = state.get("method") in _STREAMING_METHODS
        opened = task is not None and state.get(TURN_OPENED) == message.message_id
        if task is None:
            # A blocking send's new task starts out working: one save fewer than submitted, then working.
            status = TaskStatus(state=TaskState.TASK_STATE_SUBMITTED if streaming else TaskState.TASK_STATE_WORKING)
            status.timestamp.GetCurrentTime()
            await turn.open(
                Task(id=task_id, context_id=context_id, status=status, history=[message], metadata={"skillId": skill_id}),
                # A caller who asked for the task at once gets it at once.
                defer=may_reply_with_message(self.flows.get(skill_id))
                and not (context.configuration is not None and context.configuration.return_immediately),
            )
            earlier: Sequence[Message] = []
            # A random new id has no run yet; a derived one may, if this message came before.
            resuming = (
                context.call_context is not None
                and state.get(NEW_TASK_ID) != task_id
                and task_id == first_message_task_id(resolve_user_scope(context.call_context), context_id, message.message_id)
            )
        elif opened:
            # The request handler has put this message in the history and set the task working.
            earlier = Earlier(task.history, None, held=len(task.history) - 1)
            resuming = True
        else:
            status_message = task.status.message if task.status.HasField("message") else None
            earlier = Earlier(task.history, status_message)
            seen = self.last_records.message_ids(task_id).of(task.history)
            if message.message_id in seen or (status_message is not None and status_message.message_id == message.message_id):
                earlier = list(earlier)
                kept = [m for m in earlier if m.message_id != message.message_id]
                answered = earlier[-1].message_id != message.message_id and message.message_id not in noted_unanswered(task)
                if answered and task.status.state not in _UNFINISHED_TURN:
                    await self._answer_repeat(context, task, queue)
                    return
                # The task has the message but no answer after it: the server stopped between
                # saving the one and the other (nothing else can be running this turn while it
                # is held). The run record finishes it or answers it.
                earlier = kept
            resuming = True
        flow = self.flows.get(skill_id)
        if flow is None:
            await updater.failed(
                self._agent_text(
                    updater,
                    f"task {task_id!r} runs skill {skill_id!r}, which this server no longer has "
                    f"(skills: {', '.join(self.flows)}); start a new task.",
                )
            )
            return
        kept = self.last_records.take(task_id)
        try:
            record = await load_run_record(self.persistence, task_id, known=kept) if resuming else None
            if record is not None and applied(record, message):
                # The turn ran to its end, but the server stopped before the task was saved.
                logger.info("message %s already applied to run %s; answering from the run record", message.message_id, task_id)
                await self._answer(updater, record.status, record.shared, record.error, turn)
                return
            events = _RunEvents(updater, {a.artifact_id for a in task.artifacts} if task else set())
            if record is not None and cut_short(record, message):
                finished = await self._finish_cut_short(flow, record, message, updater, turn, events)
                if finished is None:
                    return
                record = finished
            noted = noted_unanswered(task)
            open_turns = unanswered(earlier if opened else task.history if task is not None else (), message, record, noted)
            shared = turn_shared(record, task_id, context_id, skill_id, earlier, message, kept=record is not None and record is kept)
            if record is None:
                record = RunRecord(run_id=task_id, shared=shared, flow=flow.name)
            if open_turns != noted:
                await updater.update_status(TaskState.TASK_STATE_WORKING, metadata={UNANSWERED: open_turns})
            elif not streaming and task is not None and not opened:
                await updater.start_work()
            result = await self._run(flow, record, turn.hook(events.on_status_update if streaming else None), events)
        except RunLockLostError:
            raise  # the turn is stopped, and must write nothing more (not even "failed")
        except PocketMeshError as error:
            error_id = new_error_id()
            logger.error(
                "task %s failed before its flow could run (error id %s): %s: %s",
                task_id, error_id, type(error).__name__, error, exc_info=error,
                extra={"run_id": task_id, "error_id": error_id},
            )
            failure = {"type": type(error).__name__, "message": str(error), "id": error_id}
            await updater.failed(self._agent_text(updater, self._failure_text(failure)))
            return
        failure = _failure_of(result)
        if message.message_id in open_turns:
            # This message's turn, stopped before, has run now: a repeat of it gets the task.
            answered_now = [m for m in open_turns if m != message.message_id]
            await updater.update_status(TaskState.TASK_STATE_WORKING, metadata={UNANSWERED: answered_now})
        await self._answer(updater, result.status, result.shared, failure, turn)

    async def _answer(
        self,
        updater: TaskUpdater,
        status: str,
        shared: Mapping[str, Any],
        error: Mapping[str, Any] | None,
        turn: TurnReply | None = None,
    ) -> None:
        """Report how a turn ended: the final status, with the reply the run left in ``shared``."""
        reply = self._reply(updater, shared)
        if turn is not None and await turn.finish(status, shared, reply):
            return
        if status == "input-required":
            await updater.requires_input(reply)
        elif status == "completed":
            await updater.complete(reply)
        elif status == "canceled":
            await updater.cancel(reply)
        else:
            await updater.failed(self._agent_text(updater, self._failure_text(error)))

    def _failure_text(self, error: Mapping[str, Any] | None) -> str:
        """What the client is told about a failed turn: the error id, and with ``expose_errors``
        the exception too. The log has the traceback under the same id."""
        error = error or {}
        error_id = error.get("id")
        if error_id is None:
            # A record saved before failures had ids: log it now, so the id leads somewhere.
            error_id = new_error_id()
            logger.error("a task failed (error id %s): %s: %s", error_id, error.get("type"), error.get("message"))
        if self.expose_errors:
            return f"{error.get('type')}: {error.get('message')} (error id {error_id})"
        return f"The agent failed to handle this message (error id {error_id}); its operators can look the id up in the server log."

    async def _run(self, flow: BaseNode, record: RunRecord, on_status: Any, events: _RunEvents) -> Any:
        """Run the turn on ``record``; a paused run's record is kept for the task's next turn."""
        assert isinstance(flow, Flow), f"skill flows are Flows, got {flow!r}"
        result = await run_record(flow, record, self.persistence, on_status_update=on_status, on_artifact=events.on_artifact)
        self.last_records.keep(record)
        return result

    async def _finish_cut_short(
        self, flow: BaseNode, record: RunRecord, message: Message, updater: TaskUpdater, turn: TurnReply, events: _RunEvents
    ) -> RunRecord | None:
        """Finish the turn the run was in when its server stopped, before ``message`` (another
        message) gets a turn of its own: that turn's answer goes into the task as a working
        status, and the run, paused again, is returned to take ``message``. If the finished
        turn ends the run, the task is answered with how it ended (``None`` returned)."""
        logger.info(
            "run %s: finishing the turn cut short by a server stop before message %s", record.run_id, message.message_id,
            extra={"run_id": record.run_id},
        )
        result = await self._run(flow, record, None, events)
        if result.status == "input-required":
            self.last_records.take(record.run_id)
            await updater.update_status(TaskState.TASK_STATE_WORKING, message=self._reply(updater, record.shared))
            return record
        await self._answer(updater, result.status, result.shared, _failure_of(result), turn)
        return None

    async def _answer_repeat(self, context: RequestContext, task: Task, queue: EventQueue) -> None:
        # A blocking send answers with the task as stored once this returns; a stream needs
        # an event to carry it. Either way the flow does not run a second time.
        logger.info("message already applied to task %s; answering without running the flow", task.id)
        if context.call_context.state.get("method") in _STREAMING_METHODS:
            await queue.enqueue_event(task)

    @staticmethod
    def _reply(updater: TaskUpdater, shared: Mapping[str, Any]) -> Message | None:
        parts = shared.get(keys.FINAL_RESPONSE_PARTS)
        if not parts:
            return None
        return updater.new_agent_message([part_from_dict(p) for p in parts])

    @staticmethod
    def _agent_text(updater: TaskUpdater, text: str) -> Message:
        return updater.new_agent_message([part_from_dict({"kind": "text", "text": text})])


def _failure_of(result: Any) -> dict[str, Any] | None:
    """How a run failed (type, message, error id), as its record keeps it; ``None`` if it did not."""
    if result.error is None:
        return None
    return {"type": type(result.error).__name__, "message": str(result.error), "id": result.error_id}


class _RunEvents:
    """The hooks of one run: a working status per node, and artifacts as artifact updates."""

    def __init__(self, updater: TaskUpdater, known_artifacts: set[str]) -> None:
        self.updater = updater
        self.known_artifacts = known_artifacts

    async def on_status_update(self, update: StatusUpdate) -> None:
        if update.state == "working":
            meta: dict[str, Any] = {"node": update.node, "step": update.step}
            if update.item is not None:  # a batch item starting: say which
                meta.update(item=update.item, message=update.message)
            await self.updater.update_status(TaskState.TASK_STATE_WORKING, metadata={"pocketmesh": meta})

    async def on_artifact(self, artifact: Any) -> None:
        if not isinstance(artifact, Mapping):
            raise ValueError(
                f"an artifact is a dict: a JSON object (sent as one data part) or one with 'parts' "
                f"(and usually 'artifactId'), got {artifact!r:.80} ({type(artifact).__name__}); e.g. "
                f"emit_artifact({{'score': 0.9}}) or emit_artifact({{'artifactId': 'answer', 'parts': [create_text_part('...')]}})."
            )
        if "parts" not in artifact:
            artifact = {"parts": [{"kind": "data", "data": dict(artifact)}]}
        elif not isinstance(artifact["parts"], list):
            raise ValueError(f"an artifact's 'parts' must be a list of parts, got {artifact['parts']!r:.80}.")
        artifact_id = str(artifact.get("artifactId") or uuid.uuid4())
        append = artifact_id in self.known_artifacts
        self.known_artifacts.add(artifact_id)
        await self.updater.add_artifact(
            [part_from_dict(p) for p in artifact["parts"]],
            artifact_id=artifact_id,
            name=artifact.get("name"),
            metadata=artifact.get("metadata"),
            append=append,
            last_chunk=artifact.get("lastChunk"),
        )
