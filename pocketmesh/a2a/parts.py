"""Message parts in the seed's JSON shape: ``{"kind": "text", "text": ...}`` and friends.

Nodes see and produce parts as plain dicts so that shared state stays JSON-serializable and
reads the same in the 0.3 and 1.0 wire versions; :mod:`pocketmesh.a2a.convert` translates them
to and from the SDK's protobuf types.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

Part = dict[str, Any]
"""One message part: ``{"kind": "text" | "data" | "file", ...}``, optionally ``metadata``."""


def create_text_part(text: str, metadata: Mapping[str, Any] | None = None) -> Part:
    """A text part: ``{"kind": "text", "text": text}``."""
    if not isinstance(text, str):
        raise TypeError(f"create_text_part needs a str, got {text!r:.80} ({type(text).__name__}); pass str(value).")
    part: Part = {"kind": "text", "text": text}
    if metadata:
        part["metadata"] = dict(metadata)
    return part


def create_data_part(data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> Part:
    """A structured data part: ``{"kind": "data", "data": {...}}``."""
    if not isinstance(data, Mapping):
        raise TypeError(
            f"create_data_part needs a dict, got {data!r:.80} ({type(data).__name__}); "
            f"wrap other values, e.g. create_data_part({{'value': value}})."
        )
    part: Part = {"kind": "data", "data": dict(data)}
    if metadata:
        part["metadata"] = dict(metadata)
    return part


def create_file_part(
    *,
    uri: str | None = None,
    bytes: bytes | str | None = None,  # noqa: A002 - the seed's field name
    name: str | None = None,
    mime_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Part:
    """A file part, by ``uri`` or by content (``bytes``: raw bytes or a base64 string)."""
    if (uri is None) == (bytes is None):
        raise ValueError(
            f"create_file_part needs exactly one of uri= or bytes=, got uri={uri!r:.40} and "
            f"bytes={'set' if bytes is not None else None}; pass the file's URL or its content."
        )
    file: dict[str, Any] = {}
    if uri is not None:
        file["uri"] = uri
    elif isinstance(bytes, (bytearray, type(b""))):
        file["bytes"] = base64.b64encode(bytes).decode("ascii")
    else:
        file["bytes"] = bytes
    if name:
        file["name"] = name
    if mime_type:
        file["mimeType"] = mime_type
    part: Part = {"kind": "file", "file": file}
    if metadata:
        part["metadata"] = dict(metadata)
    return part


def is_text_part(part: Any) -> bool:
    """True for a ``{"kind": "text", "text": str}`` part."""
    return isinstance(part, Mapping) and part.get("kind") == "text" and isinstance(part.get("text"), str)


def is_data_part(part: Any) -> bool:
    """True for a ``{"kind": "data", "data": {...}}`` part."""
    return isinstance(part, Mapping) and part.get("kind") == "data" and "data" in part


def is_file_part(part: Any) -> bool:
    """True for a ``{"kind": "file", "file": {...}}`` part."""
    return isinstance(part, Mapping) and part.get("kind") == "file" and isinstance(part.get("file"), Mapping)


def first_text(parts: Any) -> str | None:
    """The text of the first text part, or ``None``."""
    for part in parts or ():
        if is_text_part(part):
            return str(part["text"])
    return None


def coerce_parts(content: Any) -> list[Part]:
    """Accept a str, one part, or a list of parts (or strings) and return a list of parts."""
    if isinstance(content, str):
        return [create_text_part(content)]
    if isinstance(content, Mapping):
        return [_checked_part(content)]
    if isinstance(content, (list, tuple)):
        return [create_text_part(p) if isinstance(p, str) else _checked_part(p) for p in content]
    raise TypeError(
        f"message content must be a str, a part dict or a list of parts, got {content!r:.80} "
        f"({type(content).__name__}); build parts with create_text_part / create_data_part."
    )


def _checked_part(part: Any) -> Part:
    if is_text_part(part) or is_data_part(part) or is_file_part(part):
        return dict(part)
    raise ValueError(
        f"not a message part: {part!r:.80}; a part is {{'kind': 'text', 'text': ...}}, "
        f"{{'kind': 'data', 'data': {{...}}}} or {{'kind': 'file', 'file': {{...}}}}."
    )
