"""Translation between the SDK's protobuf types and the seed's JSON shapes.

Shared state holds messages and parts as plain dicts (JSON-serializable, the same for both
wire versions); the SDK speaks protobuf. Everything that crosses that line goes through here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from a2a.types import Artifact, Message, Part, Role, TaskState
from google.protobuf.json_format import MessageToDict, ParseDict

from .parts import Part as PartDict
from .parts import is_data_part, is_file_part, is_text_part

_ROLE_NAMES = {Role.ROLE_USER: "user", Role.ROLE_AGENT: "agent"}


def state_name(state: int) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` -> ``"input-required"`` (the 0.3 / seed spelling)."""
    name = TaskState.Name(state)  # type: ignore[arg-type]
    return name.removeprefix("TASK_STATE_").lower().replace("_", "-")


def part_to_dict(part: Part) -> PartDict:
    """A protobuf part as a seed-shaped dict."""
    which = part.WhichOneof("content")
    out: PartDict
    if which == "text":
        out = {"kind": "text", "text": part.text}
    elif which == "data":
        out = {"kind": "data", "data": MessageToDict(part.data)}
    elif which in ("raw", "url"):
        file: dict[str, Any] = (
            {"bytes": base64.b64encode(part.raw).decode("ascii")} if which == "raw" else {"uri": part.url}
        )
        if part.filename:
            file["name"] = part.filename
        if part.media_type:
            file["mimeType"] = part.media_type
        out = {"kind": "file", "file": file}
    else:
        out = {"kind": "text", "text": ""}
    if part.HasField("metadata"):
        out["metadata"] = MessageToDict(part.metadata)
    return out


def part_from_dict(part: Mapping[str, Any]) -> Part:
    """A seed-shaped part dict as a protobuf part; anything else raises ``ValueError``."""
    out = Part()
    if is_text_part(part):
        out.text = part["text"]
    elif is_data_part(part):
        ParseDict(part["data"], out.data)
    elif is_file_part(part):
        file = part["file"]
        if "uri" in file:
            out.url = str(file["uri"])
        else:
            try:
                out.raw = base64.b64decode(file.get("bytes") or "", validate=True)
            except (binascii.Error, ValueError) as error:
                raise ValueError(
                    f"file part bytes must be base64 text, got {str(file.get('bytes'))[:40]!r}: {error}; "
                    f"build it with create_file_part(bytes=raw_bytes)."
                ) from error
        if file.get("name"):
            out.filename = str(file["name"])
        if file.get("mimeType"):
            out.media_type = str(file["mimeType"])
    else:
        raise ValueError(
            f"not a message part: {dict(part)!r:.80}; use create_text_part, create_data_part "
            f"or create_file_part to build final response parts and artifacts."
        )
    metadata = part.get("metadata")
    if metadata:
        ParseDict(dict(metadata), out.metadata)
    return out


def message_to_dict(message: Message) -> dict[str, Any]:
    """A protobuf message in the seed's JSON shape (``role`` "user" / "agent", ``kind`` parts)."""
    out: dict[str, Any] = {
        "kind": "message",
        "role": _ROLE_NAMES.get(message.role, "user"),
        "messageId": message.message_id,
        "parts": [part_to_dict(p) for p in message.parts],
    }
    if message.task_id:
        out["taskId"] = message.task_id
    if message.context_id:
        out["contextId"] = message.context_id
    if message.HasField("metadata"):
        out["metadata"] = MessageToDict(message.metadata)
    return out


def artifact_to_dict(artifact: Artifact) -> dict[str, Any]:
    """A protobuf artifact in the seed's JSON shape."""
    out: dict[str, Any] = {"artifactId": artifact.artifact_id, "parts": [part_to_dict(p) for p in artifact.parts]}
    if artifact.name:
        out["name"] = artifact.name
    if artifact.description:
        out["description"] = artifact.description
    if artifact.HasField("metadata"):
        out["metadata"] = MessageToDict(artifact.metadata)
    return out


def text_of(parts: Any) -> str:
    """The text parts of a seed-shaped part list, joined by newlines."""
    return "\n".join(str(p["text"]) for p in parts or () if is_text_part(p))
