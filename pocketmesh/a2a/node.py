"""``A2ABaseNode``: a node that reads the incoming A2A message and writes the reply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..node import BaseNode
from ..types import SharedState
from . import keys
from .parts import Part, create_data_part, create_file_part, create_text_part, is_data_part
from .convert import part_from_dict, text_of


class A2ABaseNode(BaseNode):
    """A node with helpers for the message an A2A request brought and the reply it sends back.

    The reply is built from the *final response parts* the run leaves in shared state; the
    last node to set them wins, and each new message starts with none. A node may also choose
    how the turn ends: :meth:`reply_with_message` (a bare message, no task), :meth:`reject`
    (task ``rejected``) or :meth:`require_auth` (task ``auth-required``, paused).
    """

    may_reply_with_message: ClassVar[bool] = False
    """Set on a flow's first node to let it answer a new conversation with a bare message: the
    task is then announced only once that node has finished (or emitted an artifact)."""

    create_text_part = staticmethod(create_text_part)
    create_data_part = staticmethod(create_data_part)
    create_file_part = staticmethod(create_file_part)

    def get_incoming_message(self, shared: SharedState) -> dict[str, Any] | None:
        """The message that started this request, in the seed's JSON shape."""
        message = shared.get(keys.INCOMING_MESSAGE)
        return message if isinstance(message, dict) else None

    def get_incoming_parts(self, shared: SharedState) -> list[Part]:
        """The parts of the incoming message (empty without one)."""
        message = self.get_incoming_message(shared)
        return list(message.get("parts") or []) if message else []

    def get_incoming_text(self, shared: SharedState) -> str:
        """The text parts of the incoming message, joined by newlines (``""`` without any)."""
        return text_of(self.get_incoming_parts(shared))

    def get_incoming_data_part(self, shared: SharedState) -> Part | None:
        """The first data part of the incoming message, or ``None``."""
        return next((p for p in self.get_incoming_parts(shared) if is_data_part(p)), None)

    def get_incoming_data(self, shared: SharedState) -> Any:
        """The ``data`` of the first incoming data part, or ``None``."""
        part = self.get_incoming_data_part(shared)
        return part["data"] if part else None

    def set_final_response_parts(self, shared: SharedState, parts: Sequence[Part]) -> None:
        """Replace the reply's parts (checked now, so a bad part fails in the node that made it)."""
        checked = [dict(p) for p in parts]
        for part in checked:
            part_from_dict(part)
        shared[keys.FINAL_RESPONSE_PARTS] = checked

    def add_final_response_part(self, shared: SharedState, part: Part) -> None:
        """Append one part to the reply."""
        part_from_dict(part)
        parts = shared.get(keys.FINAL_RESPONSE_PARTS)
        if not isinstance(parts, list):
            parts = []
            shared[keys.FINAL_RESPONSE_PARTS] = parts
        parts.append(dict(part))

    def set_final_response_data(
        self, shared: SharedState, data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Make the reply a single data part (``metadata`` goes on the part)."""
        self.set_final_response_parts(shared, [create_data_part(data, metadata)])

    def reply_with_message(self, shared: SharedState, parts: Sequence[Part] | str) -> str:
        """Answer with a bare message instead of a task; returns ``"complete"`` for ``finalize``.

        Only a flow's first node that sets :attr:`may_reply_with_message` can do this for a new
        conversation; once the task is announced (later nodes, follow-up messages), the parts
        complete the task instead.
        """
        self.set_final_response_parts(shared, _as_parts(parts))
        shared[keys.REPLY_KIND] = "message"
        return "complete"

    def reject(self, shared: SharedState, parts: Sequence[Part] | str | None = None) -> str:
        """End the task ``rejected`` (the agent will not do it), with ``parts`` as the reply;
        returns ``"complete"`` for ``finalize``."""
        if parts is not None:
            self.set_final_response_parts(shared, _as_parts(parts))
        shared[keys.REPLY_KIND] = "rejected"
        return "complete"

    def require_auth(self, shared: SharedState, parts: Sequence[Part] | str | None = None) -> str:
        """Pause the task ``auth-required`` (the next message resumes it, like ``input-required``),
        with ``parts`` saying what to provide; returns ``"input-required"`` for ``finalize``."""
        if parts is not None:
            self.set_final_response_parts(shared, _as_parts(parts))
        shared[keys.REPLY_KIND] = "auth-required"
        return "input-required"


def _as_parts(parts: Sequence[Part] | str) -> list[Part]:
    return [create_text_part(parts)] if isinstance(parts, str) else list(parts)
