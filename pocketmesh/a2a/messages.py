"""Checks of what a client sends, on the SDK's protobuf types: made by the request handler, so
every transport (JSON-RPC, HTTP+JSON, gRPC) passes them before anything is stored.

- a message a client sends is a user message, with at least one part, each part with content;
- data and metadata nest at most :data:`MAX_DATA_DEPTH` levels (deeper ones parse, but a task
  holding them could not be read back from its stored form);
- a message is at most ``max_message_size`` bytes, and a task's history at most
  ``max_history_size`` bytes (:class:`MessageLimits`), so no task grows without bound and every
  save of it stays cheap;
- ``ListTasks`` filters by a task state that exists.

Each refusal is an invalid-params error (-32602) naming the field, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from a2a.types import ListTasksRequest, Message, Part, Role, Task, TaskState
from a2a.utils.errors import InvalidParamsError
from google.protobuf.struct_pb2 import Struct, Value

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
"""Largest message accepted by default, in bytes of its protobuf form (1 MiB)."""

DEFAULT_MAX_HISTORY_SIZE = 8 * 1024 * 1024
"""Largest task history accepted by default, in bytes (8 MiB): messages of both roles."""

MAX_DATA_DEPTH = 24
"""Deepest nesting of objects and lists accepted in a data part or in metadata."""


def _limit(name: str, value: int | None) -> int | None:
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{name} must be a whole number of bytes (0 or None: no limit), got {value!r:.40}; "
            f"e.g. {name}=4 * 1024 * 1024 for 4 MiB."
        )
    return value


@dataclass(frozen=True)
class MessageLimits:
    """How large one message and one task's history may grow (bytes; ``None``: no limit)."""

    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    max_history_size: int | None = DEFAULT_MAX_HISTORY_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_message_size", _limit("max_message_size", self.max_message_size))
        object.__setattr__(self, "max_history_size", _limit("max_history_size", self.max_history_size))


def _refuse(message: str) -> InvalidParamsError:
    return InvalidParamsError(message=f"invalid params: {message}")


def check_message(message: Message, limits: MessageLimits) -> None:
    """Refuse a message no client should send, or one over ``limits.max_message_size``."""
    if message.role != Role.ROLE_USER:
        name = Role.Name(message.role) if message.role in Role.values() else message.role
        raise _refuse(
            f"message.role must be ROLE_USER ('user' in A2A 0.3): a client sends user messages, "
            f"and this one says {name!r}."
        )
    if not message.parts:
        raise _refuse("message.parts is empty; send at least one part, e.g. {\"text\": \"hello\"}.")
    for index, part in enumerate(message.parts):
        _check_part(part, f"message.parts[{index}]")
    if message.HasField("metadata"):
        _check_depth(message.metadata, "message.metadata")
    size = message.ByteSize()
    if limits.max_message_size is not None and size > limits.max_message_size:
        raise _refuse(
            f"the message is {size} bytes, over this agent's limit of {limits.max_message_size} bytes "
            f"(max_message_size; pocketmesh serve --max-message-size). Send large content by URL "
            f"(a url part), or split it over several messages."
        )


def _check_part(part: Part, where: str) -> None:
    content = part.WhichOneof("content")
    if content is None:
        raise _refuse(
            f"{where} has no content; a part holds one of text, raw (base64 bytes), url or data, "
            f"e.g. {{\"text\": \"hello\"}}."
        )
    if content == "url" and not part.url:
        raise _refuse(f"{where}.url is empty; give the file's URL, or send its bytes as raw.")
    if content == "data":
        _check_depth(part.data, f"{where}.data")
    if part.HasField("metadata"):
        _check_depth(part.metadata, f"{where}.metadata")


def _check_depth(value: Value | Struct, where: str) -> None:
    if _depth(value) > MAX_DATA_DEPTH:
        raise _refuse(
            f"{where} nests objects and lists more than {MAX_DATA_DEPTH} levels deep, the most this agent "
            f"accepts. Flatten the data, or send it as a JSON document in a raw or text part."
        )


def _depth(root: Value | Struct) -> int:
    """How many levels of objects and lists ``root`` nests (a scalar: 0, ``{}``: 1), counted up
    to one past :data:`MAX_DATA_DEPTH`."""
    deepest = 0
    stack: list[tuple[Value | Struct, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[Value]
        if isinstance(value, Struct):
            children = value.fields.values()
        else:
            kind = value.WhichOneof("kind")
            if kind == "struct_value":
                children = value.struct_value.fields.values()
            elif kind == "list_value":
                children = value.list_value.values
            else:
                continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_DATA_DEPTH:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def history_size(task: Task, history_bytes: int | None = None) -> int:
    """Bytes of a task's messages: its history and its status message (``history_bytes``: the
    history's, when the caller already knows them)."""
    size = sum(m.ByteSize() for m in task.history) if history_bytes is None else history_bytes
    if task.status.HasField("message"):
        size += task.status.message.ByteSize()
    return size


def check_history(task: Task | None, message: Message, limits: MessageLimits, history_bytes: int | None = None) -> None:
    """Refuse a message that would take the task's history over ``limits.max_history_size``."""
    if limits.max_history_size is None or task is None:
        return
    held = history_size(task, history_bytes)
    incoming = message.ByteSize()
    if held + incoming > limits.max_history_size:
        raise _refuse(
            f"task {task.id!r} holds {held} bytes of history, and this message ({incoming} bytes) would take "
            f"it over this agent's limit of {limits.max_history_size} bytes (max_history_size; pocketmesh "
            f"serve --max-history-size). Start a new task for the rest of the conversation."
        )


_STATES = frozenset(TaskState.values())


def check_list_request(params: ListTasksRequest) -> None:
    """Refuse a ``ListTasks`` filter on a task state that does not exist."""
    # Unset reads 0 (TASK_STATE_UNSPECIFIED), "no filter"; a number no state has stays as sent.
    if params.status not in _STATES:
        names = ", ".join(n for n in TaskState.keys() if n != "TASK_STATE_UNSPECIFIED")
        raise _refuse(f"status must be one of {names}; got {params.status!r}.")
