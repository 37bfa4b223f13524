"""``create_a2a_client``: a small client over the SDK's, speaking in the seed's JSON shapes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from a2a.client import A2ACardResolver, ClientCallContext, ClientFactory
from a2a.client.errors import AgentCardResolutionError
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from google.protobuf.json_format import ParseDict, ParseError

from ..convert import message_to_dict, part_from_dict
from ..parts import Part, coerce_parts
from .bindings import choose, client_config
from .views import StreamEvent, TaskPage, TaskView, push_config_to_dict


class A2AClient:
    """Send messages to an A2A agent and read its tasks; made by :func:`create_a2a_client`.

    ``transport`` is the binding in use (``"JSONRPC"``, ``"HTTP+JSON"`` or ``"GRPC"``).
    """

    def __init__(
        self,
        card: AgentCard,
        http: httpx.AsyncClient,
        *,
        owns_http: bool,
        headers: Mapping[str, str] | None = None,
        transport: str | None = None,
    ) -> None:
        self.card = card
        self.transport = choose(card, transport)
        self._http = http
        self._owns_http = owns_http
        # Sent with every call (credentials, for one; gRPC metadata there), without changing a
        # caller's httpx client.
        self._context = ClientCallContext(service_parameters=dict(headers)) if headers else None
        self._blocking = ClientFactory(client_config(self.transport, streaming=False, httpx_client=http)).create(card)
        self._streaming = ClientFactory(client_config(self.transport, streaming=True, httpx_client=http)).create(card)

    async def send_message(
        self,
        content: str | Part | list[Any],
        *,
        task_id: str | None = None,
        context_id: str | None = None,
        skill: str | None = None,
        message_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        push_config: Mapping[str, Any] | None = None,
    ) -> TaskView:
        """Send and wait until the task completes, fails or asks for input.

        An agent that answers with a bare message gives a view with ``kind == "message"``, no
        task id and state ``completed``. ``push_config`` (``{"url": ..., "token": ...}``)
        registers a push notification config for the new task with the message.
        """
        request = _request(content, task_id, context_id, skill, message_id, metadata, push_config)
        async for response in self._blocking.send_message(request, context=self._context):
            if response.HasField("task"):
                return TaskView.from_task(response.task)
            message = message_to_dict(response.message)
            return TaskView(
                message.get("taskId", ""), message.get("contextId", ""), "completed", message["parts"], kind="message"
            )
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
        push_config: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Send and yield each event as it arrives: task, working statuses, artifacts, final status."""
        request = _request(content, task_id, context_id, skill, message_id, metadata, push_config)
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

    async def list_tasks(
        self,
        *,
        context_id: str | None = None,
        state: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> TaskPage:
        """The caller's tasks, newest first; ``state`` as in views (``"input-required"``)."""
        request = ListTasksRequest(context_id=context_id or "", page_token=page_token or "")
        if state is not None:
            request.status = TaskState.Value("TASK_STATE_" + state.upper().replace("-", "_"))
        if page_size is not None:
            request.page_size = page_size
        page = await self._blocking.list_tasks(request, context=self._context)
        return TaskPage([TaskView.from_task(t) for t in page.tasks], page.next_page_token, page.total_size)

    async def subscribe(self, task_id: str) -> AsyncIterator[StreamEvent]:
        """Follow a task that is still under way: the task as it stands, then its events to the end."""
        async for response in self._streaming.subscribe(SubscribeToTaskRequest(id=task_id), context=self._context):
            yield StreamEvent.from_response(response)

    async def set_push_config(
        self,
        task_id: str,
        url: str,
        *,
        config_id: str | None = None,
        token: str | None = None,
        authentication: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Register (or replace, same ``config_id``) a push notification config for the task.

        ``token`` comes back in each notification's ``X-A2A-Notification-Token`` header;
        ``authentication`` (``{"scheme": "Bearer", "credentials": "..."}``) in its ``Authorization``.
        """
        config = _push_config({"url": url, "id": config_id, "token": token, "authentication": authentication})
        config.task_id = task_id
        return push_config_to_dict(await self._blocking.create_task_push_notification_config(config, context=self._context))

    async def get_push_config(self, task_id: str, config_id: str) -> dict[str, Any]:
        """One push notification config of the task."""
        request = GetTaskPushNotificationConfigRequest(task_id=task_id, id=config_id)
        return push_config_to_dict(await self._blocking.get_task_push_notification_config(request, context=self._context))

    async def list_push_configs(self, task_id: str) -> list[dict[str, Any]]:
        """The push notification configs of the task (the caller's own)."""
        request = ListTaskPushNotificationConfigsRequest(task_id=task_id)
        response = await self._blocking.list_task_push_notification_configs(request, context=self._context)
        return [push_config_to_dict(c) for c in response.configs]

    async def delete_push_config(self, task_id: str, config_id: str) -> None:
        """Delete a push notification config (deleting one that is gone is not an error)."""
        request = DeleteTaskPushNotificationConfigRequest(task_id=task_id, id=config_id)
        await self._blocking.delete_task_push_notification_config(request, context=self._context)

    async def get_extended_card(self) -> AgentCard:
        """The agent's extended card, for authenticated callers (when its card says it has one)."""
        return await self._blocking.get_extended_agent_card(GetExtendedAgentCardRequest(), context=self._context)

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
    transport: str | None = None,
) -> A2AClient:
    """A client for the agent at ``url`` (its base URL, or its JSON-RPC URL such as ``.../a2a``).

    The agent card is fetched from ``/.well-known/agent-card.json``; requests go to the
    interface the card lists first among those this client speaks, or to the one ``transport``
    asks for (``"JSONRPC"``, ``"HTTP+JSON"`` / ``"rest"``, ``"GRPC"``; see
    :mod:`pocketmesh.a2a.client.bindings`). ``headers`` go with every request (as gRPC metadata over
    gRPC; e.g. ``{"X-API-Key": key}``); ``auth_token`` adds ``Authorization: Bearer <auth_token>``.
    """
    sent = _headers(headers, auth_token)
    http = httpx_client or httpx.AsyncClient(timeout=timeout)
    try:
        card = await _resolve_card(http, url, sent)
    except BaseException:
        if httpx_client is None:
            await http.aclose()
        raise
    try:
        return A2AClient(card, http, owns_http=httpx_client is None, headers=sent, transport=transport)
    except BaseException:
        if httpx_client is None:
            await http.aclose()
        raise


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
    push_config: Mapping[str, Any] | None = None,
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
    request = SendMessageRequest(message=message)
    if push_config is not None:
        request.configuration.task_push_notification_config.CopyFrom(_push_config(push_config))
    return request


def _push_config(values: Mapping[str, Any]) -> TaskPushNotificationConfig:
    given = {k: v for k, v in values.items() if v is not None}
    if not isinstance(given.get("url"), str) or not given["url"]:
        raise ValueError(f"a push config needs the receiver's 'url', got {dict(values)!r:.80}; e.g. {{'url': 'https://hooks.example.com/a2a'}}.")
    try:
        return ParseDict(given, TaskPushNotificationConfig())
    except ParseError as error:
        raise ValueError(f"not a push notification config: {dict(values)!r:.80} ({error}); keys: url, id, token, authentication.") from None
