"""``create_a2a_client``: a small client over the SDK's, speaking in the seed's JSON shapes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.errors import AgentCardResolutionError
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
)

from .convert import artifact_to_dict, message_to_dict, part_from_dict, state_name, text_of
from .parts import Part, coerce_parts


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

    @property
    def text(self) -> str:
        """The text parts of the status message (the agent's latest reply), joined."""
        return text_of(self.parts)

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

    @classmethod
    def from_response(cls, response: StreamResponse) -> StreamEvent:
        """Translate one SDK stream response."""
        from google.protobuf.json_format import MessageToDict

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


class A2AClient:
    """Send messages to an A2A agent and read its tasks; made by :func:`create_a2a_client`."""

    def __init__(
        self,
        card: AgentCard,
        http: httpx.AsyncClient,
        *,
        owns_http: bool,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.card = card
        self._http = http
        self._owns_http = owns_http
        # Sent with every call (credentials, for one), without changing a caller's httpx client.
        self._context = ClientCallContext(service_parameters=dict(headers)) if headers else None
        self._blocking = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
        self._streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)

    async def send_message(
        self,
        content: str | Part | list[Any],
        *,
        task_id: str | None = None,
        context_id: str | None = None,
        skill: str | None = None,
        message_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TaskView:
        """Send and wait until the task completes, fails or asks for input."""
        request = _request(content, task_id, context_id, skill, message_id, metadata)
        async for response in self._blocking.send_message(request, context=self._context):
            if response.HasField("task"):
                return TaskView.from_task(response.task)
            message = message_to_dict(response.message)
            return TaskView(message.get("taskId", ""), message.get("contextId", ""), "completed", message["parts"])
        raise RuntimeError("the agent sent no response to a blocking send; check the server log.")

    async def send_message_stream(
        self,
        content: str | Part | list[Any],
        *,
        task_id: str | None = None,
        context_id: str | None = None,
        skill: str | None = None,
        message_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Send and yield each event as it arrives: task, working statuses, artifacts, final status."""
        request = _request(content, task_id, context_id, skill, message_id, metadata)
        async for response in self._streaming.send_message(request, context=self._context):
            yield StreamEvent.from_response(response)

    async def get_task(self, task_id: str, *, history_length: int | None = None) -> TaskView:
        """The task as stored."""
        request = GetTaskRequest(id=task_id)
        if history_length is not None:
            request.history_length = history_length
        return TaskView.from_task(await self._blocking.get_task(request, context=self._context))

    async def cancel_task(self, task_id: str) -> TaskView:
        """Cancel the task; it ends canceled."""
        return TaskView.from_task(await self._blocking.cancel_task(CancelTaskRequest(id=task_id), context=self._context))

    async def close(self) -> None:
        """Close the SDK clients (and the HTTP client if this client made it)."""
        await self._blocking.close()
        await self._streaming.close()
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> A2AClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def create_a2a_client(
    url: str,
    *,
    httpx_client: httpx.AsyncClient | None = None,
    timeout: float = 60.0,
    headers: Mapping[str, str] | None = None,
    auth_token: str | None = None,
) -> A2AClient:
    """A client for the agent at ``url`` (its base URL, or its JSON-RPC URL such as ``.../a2a``).

    The agent card is fetched from ``/.well-known/agent-card.json``; requests go to the
    card's URL, as A2A clients do. ``headers`` go with every request (e.g. ``{"X-API-Key": key}``);
    ``auth_token`` adds ``Authorization: Bearer <auth_token>``.
    """
    sent = _headers(headers, auth_token)
    http = httpx_client or httpx.AsyncClient(timeout=timeout)
    try:
        card = await _resolve_card(http, url, sent)
    except BaseException:
        if httpx_client is None:
            await http.aclose()
        raise
    return A2AClient(card, http, owns_http=httpx_client is None, headers=sent)


def _headers(headers: Mapping[str, str] | None, auth_token: str | None) -> dict[str, str]:
    sent = dict(headers or {})
    for name, value in sent.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"headers must map str to str, got {name!r:.40}: {value!r:.40}; e.g. headers={{'X-API-Key': 'k-123'}}."
            )
    if auth_token is not None:
        if not isinstance(auth_token, str) or not auth_token.strip():
            raise ValueError(f"auth_token must be a non-empty str, got {auth_token!r:.20}; pass the bare token, no 'Bearer '.")
        sent["Authorization"] = f"Bearer {auth_token.strip()}"
    return sent


async def _resolve_card(http: httpx.AsyncClient, url: str, headers: Mapping[str, str]) -> AgentCard:
    http_kwargs = {"headers": dict(headers)} if headers else None
    try:
        return await A2ACardResolver(http, url).get_agent_card(http_kwargs=http_kwargs)
    except AgentCardResolutionError:
        parts = urlsplit(url)
        if parts.path in ("", "/"):
            raise
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        return await A2ACardResolver(http, origin).get_agent_card(http_kwargs=http_kwargs)


def _request(
    content: Any,
    task_id: str | None,
    context_id: str | None,
    skill: str | None,
    message_id: str | None,
    metadata: Mapping[str, Any] | None,
) -> SendMessageRequest:
    meta = dict(metadata or {})
    if skill is not None:
        meta["skillId"] = skill
    message = Message(
        role=Role.ROLE_USER,
        message_id=message_id or str(uuid.uuid4()),
        parts=[part_from_dict(p) for p in coerce_parts(content)],
    )
    if task_id:
        message.task_id = task_id
    if context_id:
        message.context_id = context_id
    if meta:
        message.metadata.update(meta)
    return SendMessageRequest(message=message)
