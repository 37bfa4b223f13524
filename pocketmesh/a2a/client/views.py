"""What the client returns: tasks, stream events and push configs, in the seed's JSON shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from a2a.types import StreamResponse, Task, TaskPushNotificationConfig
from google.protobuf.json_format import MessageToDict

from ..convert import artifact_to_dict, message_to_dict, state_name, text_of
from ..parts import Part


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@dataclass
class TaskView:
    """A task as the client sees it: state, reply text and parts, artifacts, history."""

    task_id: str
    context_id: str
    state: str
    parts: list[Part] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    task: Task | None = None
    kind: str = "task"
    """``"task"``, or ``"message"`` when the agent answered with a bare message (no task)."""

    @property
    def text(self) -> str:
        """The text parts of the status message (the agent's latest reply), joined."""
        return text_of(self.parts)

    def __repr__(self) -> str:
        # The protobuf task (history, artifacts, metadata) would fill a screen: say what a reader looks for.
        if self.kind == "message":
            return f"TaskView(kind='message', text={_short(self.text)}, parts={len(self.parts)})"
        return (
            f"TaskView(task_id={self.task_id!r}, state={self.state!r}, text={_short(self.text)}, "
            f"parts={len(self.parts)}, artifacts={len(self.artifacts)}, history={len(self.history)})"
        )

    @classmethod
    def from_task(cls, task: Task) -> TaskView:
        """View a protobuf task."""
        return cls(
            task_id=task.id,
            context_id=task.context_id,
            state=state_name(task.status.state),
            parts=message_to_dict(task.status.message)["parts"] if task.status.HasField("message") else [],
            artifacts=[artifact_to_dict(a) for a in task.artifacts],
            history=[message_to_dict(m) for m in task.history],
            task=task,
        )


@dataclass
class StreamEvent:
    """One streamed event: ``kind`` is "task", "status-update", "artifact-update" or "message"."""

    kind: str
    task_id: str
    state: str | None = None
    parts: list[Part] = field(default_factory=list)
    artifact: dict[str, Any] | None = None
    append: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: StreamResponse | None = None

    @property
    def text(self) -> str:
        """Text of the event's message or artifact parts."""
        return text_of(self.artifact["parts"] if self.artifact else self.parts)

    def __repr__(self) -> str:
        state = f", state={self.state!r}" if self.state else ""
        artifact = f", artifact={self.artifact.get('artifactId')!r}, append={self.append}" if self.artifact else ""
        return f"StreamEvent(kind={self.kind!r}, task_id={self.task_id!r}{state}{artifact}, text={_short(self.text)})"

    @classmethod
    def from_response(cls, response: StreamResponse) -> StreamEvent:
        """Translate one SDK stream response."""
        which = response.WhichOneof("payload")
        if which == "task":
            view = TaskView.from_task(response.task)
            return cls("task", view.task_id, view.state, view.parts, raw=response)
        if which == "status_update":
            update = response.status_update
            parts = message_to_dict(update.status.message)["parts"] if update.status.HasField("message") else []
            meta = MessageToDict(update.metadata) if update.HasField("metadata") else {}
            return cls("status-update", update.task_id, state_name(update.status.state), parts, metadata=meta, raw=response)
        if which == "artifact_update":
            update = response.artifact_update
            return cls(
                "artifact-update", update.task_id, artifact=artifact_to_dict(update.artifact), append=update.append, raw=response
            )
        message = message_to_dict(response.message)
        return cls("message", message.get("taskId", ""), parts=message["parts"], raw=response)


@dataclass
class TaskPage:
    """One page of ``list_tasks``: the tasks, the token of the next page (``""`` at the end), the total."""

    tasks: list[TaskView]
    next_page_token: str = ""
    total_size: int = 0


def push_config_to_dict(config: TaskPushNotificationConfig) -> dict[str, Any]:
    """A push config in the A2A JSON shape: ``id``, ``taskId``, ``url``, ``token``, ``authentication``."""
    return MessageToDict(config)
