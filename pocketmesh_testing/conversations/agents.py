"""Talk to an A2A agent from a test: in-process over the real app, or a live one over HTTP.

``a2a_agent(flows)`` serves flows with :func:`pocketmesh.a2a.create_a2a_app` inside the test's
event loop (no socket: requests go through :class:`~pocketmesh_testing.doubles.asgi.StreamingASGITransport`)
and can read each task's server-side shared state from its persistence. ``remote_agent(url)``
talks to any A2A agent through its card, over the transport the card prefers or the one asked
for (``transport="GRPC"``, ``"HTTP+JSON"``, ``"JSONRPC"``). Both hand out conversations::

    async with a2a_agent(flows) as agent:
        conv = agent.conversation(skill="greeting")
        reply = await conv.send("Dana")
        assert reply.state == "input-required" and reply.shared["userName"] == "Dana"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from pocketmesh import BaseNode, InMemoryPersistence, Persistence, load_run_record
from pocketmesh.a2a import A2AClient, StreamEvent, TaskView, create_a2a_app, create_a2a_client
from pocketmesh_testing.doubles.asgi import Lifespan, StreamingASGITransport
from pocketmesh_testing.doubles.marked_requests import AGENT_HEADER

__all__ = [
    "Agent", "Conversation", "Exchange", "InProcessAgent", "RemoteAgent", "Reply", "a2a_agent", "artifact_text", "part_text",
    "remote_agent", "whole_numbers",
]

INPROCESS_URL = "http://pocketmesh-agent.test"
"""Base URL of in-process agents; the transport never resolves it, so nothing leaves the process."""

_NO_SHARED = object()


def part_text(part: Mapping[str, Any]) -> str:
    """A part as text: a text part's text, a data part's data as JSON (sorted keys), a file part's name."""
    if "text" in part and part.get("kind", "text") == "text":
        return str(part["text"])
    if "data" in part:
        return json.dumps(whole_numbers(part["data"]), sort_keys=True, ensure_ascii=False)
    file = part.get("file")
    if isinstance(file, Mapping):
        name = file.get("name") or file.get("uri") or file.get("url")
        return f"<file {name}>" if name else "<file>"
    return ""


def whole_numbers(value: Any) -> Any:
    """``value`` with whole floats as ints."""
    # Data parts travel as protobuf Structs, which keep every number as a double: 3 comes back
    # 3.0. JSON has one number type, so the text shows 3, as the agent wrote it.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, Mapping):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def artifact_text(artifact: Mapping[str, Any]) -> str:
    """An artifact's parts as text (see :func:`part_text`), joined."""
    return "".join(part_text(p) for p in artifact.get("parts", []))


@dataclass
class Reply:
    """The agent's answer to one message: task state, reply text and parts, artifacts; for a
    streamed message also every event, in arrival order (``events``, ``chunks``)."""

    state: str
    task_id: str
    context_id: str = ""
    parts: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    _shared: Any = field(default=_NO_SHARED, repr=False)
    _where: str = field(default="", repr=False)

    @property
    def text(self) -> str:
        """The text parts of the reply, joined by newlines."""
        return "\n".join(str(p["text"]) for p in self.parts if p.get("kind") == "text")

    @property
    def shared(self) -> dict[str, Any]:
        """The server-side shared state of the task's run after this message."""
        if self._shared is _NO_SHARED:
            raise AttributeError(
                f"reply.shared is not available for {self._where}: the agent's state lives in "
                f"another process. Give remote_agent(url, persistence=...) the agent's store "
                f"(e.g. SQLitePersistence('<its --db file>')), or test it in-process with a2a_agent(flows)."
            )
        if self._shared is None:
            raise LookupError(f"the agent's persistence holds no run for task {self.task_id!r}.")
        return dict(self._shared)

    @property
    def has_shared(self) -> bool:
        """True when ``shared`` can be read (in-process, or remote with its persistence)."""
        return self._shared is not _NO_SHARED and self._shared is not None

    @property
    def artifact_text(self) -> str:
        """The text of every artifact (data parts as JSON), each artifact's parts joined, artifacts by newlines."""
        return "\n".join(artifact_text(a) for a in self.artifacts)

    @property
    def chunks(self) -> list[str]:
        """The text of each streamed artifact update, in order (data parts as JSON); empty unless streamed."""
        return self.chunks_of()

    def chunks_of(self, artifact: str | None = None) -> list[str]:
        """The streamed artifact updates' text, only those of the artifact named (or with id) ``artifact`` if given."""
        names: dict[str, str] = {}
        out: list[str] = []
        for event in self.events:
            if event.kind != "artifact-update" or event.artifact is None:
                continue
            artifact_id = str(event.artifact.get("artifactId", ""))
            if event.artifact.get("name"):
                names[artifact_id] = str(event.artifact["name"])  # later chunks may carry only the id
            if artifact is None or artifact in (artifact_id, names.get(artifact_id)):
                out.append(artifact_text(event.artifact))
        return out


@dataclass
class Exchange:
    """One turn of a conversation: what was sent and what came back (or the error)."""

    sent: list[dict[str, Any]]
    reply: Reply | None = None
    error: BaseException | None = None
    streamed: bool = False

    @property
    def sent_text(self) -> str:
        """The text parts sent, or a short description of the non-text ones."""
        texts = [str(p["text"]) for p in self.sent if p.get("kind") == "text"]
        others = [p.get("kind", "?") for p in self.sent if p.get("kind") != "text"]
        return " ".join(texts + [f"<{k} part>" for k in others])


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"kind": "text", "text": content}]
    if isinstance(content, Mapping):
        return [dict(content)]
    if isinstance(content, (list, tuple)):
        return [{"kind": "text", "text": p} if isinstance(p, str) else dict(p) for p in content]
    raise TypeError(
        f"send() takes a str, a part dict or a list of parts, got {content!r:.80} ({type(content).__name__}); "
        f"e.g. conv.send('hello') or conv.send([{{'kind': 'data', 'data': {{'a': 1}}}}])."
    )


class Conversation:
    """One task with an agent: the first message starts it, later ones continue it."""

    def __init__(self, agent: Agent, skill: str | None = None) -> None:
        self.agent = agent
        self.skill = skill
        self.task_id: str | None = None
        self.context_id: str | None = None
        self.exchanges: list[Exchange] = []

    async def send(self, content: Any, *, message_id: str | None = None, metadata: Mapping[str, Any] | None = None) -> Reply:
        """Send a message and wait until the task completes, fails or asks for input."""
        exchange = Exchange(_parts(content))
        self.exchanges.append(exchange)
        client = await self.agent.client()
        try:
            view = await client.send_message(
                exchange.sent, task_id=self.task_id, context_id=self.context_id,
                skill=self.skill, message_id=message_id, metadata=metadata,
            )
        except BaseException as error:
            exchange.error = error
            raise
        reply = await self._reply_from_view(view)
        exchange.reply = reply
        return reply

    async def stream(
        self, content: Any, *, message_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> Reply:
        """Send a message as a stream; the reply is built from the events, which ``reply.events`` keeps."""
        exchange = Exchange(_parts(content), streamed=True)
        self.exchanges.append(exchange)
        client = await self.agent.client()
        events: list[StreamEvent] = []
        try:
            async for event in client.send_message_stream(
                exchange.sent, task_id=self.task_id, context_id=self.context_id,
                skill=self.skill, message_id=message_id, metadata=metadata,
            ):
                events.append(event)
        except BaseException as error:
            exchange.error = error
            raise
        reply = await self._reply_from_events(events)
        exchange.reply = reply
        return reply

    async def cancel(self) -> Reply:
        """Cancel the conversation's task."""
        if self.task_id is None:
            raise RuntimeError("nothing to cancel: send a first message to start the task.")
        client = await self.agent.client()
        return await self._reply_from_view(await client.cancel_task(self.task_id))

    async def _reply_from_view(self, view: TaskView) -> Reply:
        self.task_id = view.task_id or self.task_id
        self.context_id = view.context_id or self.context_id
        reply = Reply(view.state, view.task_id, view.context_id, list(view.parts), list(view.artifacts))
        return await self._with_shared(reply)

    async def _reply_from_events(self, events: list[StreamEvent]) -> Reply:
        state, parts, context_id = "unknown", [], ""
        artifacts: dict[str, dict[str, Any]] = {}
        task_id = self.task_id or ""
        for event in events:
            task_id = event.task_id or task_id
            if event.raw is not None and event.kind == "task":
                context_id = event.raw.task.context_id
            if event.state:
                state = event.state
            if event.kind in ("task", "status-update", "message") and event.parts:
                parts = list(event.parts)
            if event.artifact is not None:
                artifact_id = str(event.artifact.get("artifactId", ""))
                if event.append and artifact_id in artifacts:
                    artifacts[artifact_id]["parts"].extend(event.artifact.get("parts", []))
                else:
                    artifacts[artifact_id] = {**event.artifact, "parts": list(event.artifact.get("parts", []))}
        self.task_id = task_id or self.task_id
        self.context_id = context_id or self.context_id
        reply = Reply(state, task_id, self.context_id or "", parts, list(artifacts.values()), list(events))
        return await self._with_shared(reply)

    async def _with_shared(self, reply: Reply) -> Reply:
        reply._where = self.agent.describe()
        if self.agent.persistence is not None and reply.task_id:
            record = await load_run_record(self.agent.persistence, reply.task_id)
            reply._shared = None if record is None else record.shared
        return reply


class Agent:
    """An A2A agent a test talks to; use as ``async with``, or call ``aclose()`` at the end."""

    persistence: Persistence | None = None

    def __init__(self) -> None:
        self._client: A2AClient | None = None
        self._http: httpx.AsyncClient | None = None

    def conversation(self, skill: str | None = None) -> Conversation:
        """A new conversation (one task) with the skill ``skill`` (default: the agent's first)."""
        return Conversation(self, skill)

    async def client(self) -> A2AClient:
        """The A2A client, connected (card fetched) on first use."""
        if self._client is None:
            await self._connect()
        assert self._client is not None
        return self._client

    async def skills(self) -> list[str]:
        """The skill ids on the agent's card."""
        return [s.id for s in (await self.client()).card.skills]

    async def _connect(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """A short description for transcripts and error messages."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the client (and stop the in-process app)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def __aenter__(self) -> Agent:
        await self.client()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


class InProcessAgent(Agent):
    """Flows served by the real A2A app inside this event loop (JSON-RPC, or HTTP+JSON if asked)."""

    def __init__(
        self,
        flows: Mapping[str, BaseNode],
        agent_card: Any = None,
        persistence: Persistence | None = None,
        transport: str | None = None,
        *,
        expose_errors: bool = False,
    ) -> None:
        super().__init__()
        if transport is not None and transport.strip().upper() == "GRPC":
            raise ValueError(
                "a2a_agent serves flows in-process, without sockets, and gRPC needs one; use transport='JSONRPC' "
                "or 'HTTP+JSON' here, or serve the flows (create_a2a_app(..., grpc_port=...)) and use remote_agent."
            )
        self.transport = transport
        self.flows = dict(flows)
        # In-memory by default: a test's tasks should not outlive it or touch ./pocketmesh.sqlite.
        self.persistence = persistence if persistence is not None else InMemoryPersistence()
        self.app = create_a2a_app(
            self.flows, agent_card=agent_card, persistence=self.persistence, expose_errors=expose_errors
        )
        self._lifespan: Lifespan | None = None

    async def _connect(self) -> None:
        self._lifespan = Lifespan(self.app)
        await self._lifespan.start()
        self._http = httpx.AsyncClient(transport=StreamingASGITransport(self.app), timeout=60)
        self._client = await create_a2a_client(INPROCESS_URL, httpx_client=self._http, transport=self.transport)

    def describe(self) -> str:
        return f"in-process agent (skills: {', '.join(self.flows)})"

    async def aclose(self) -> None:
        await super().aclose()
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.stop()


class RemoteAgent(Agent):
    """A live agent at ``url`` (its base URL or JSON-RPC URL), any implementation."""

    def __init__(
        self, url: str, persistence: Persistence | None = None, timeout: float = 60.0, transport: str | None = None
    ) -> None:
        super().__init__()
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"remote_agent needs the agent's http(s) URL, got {url!r}; e.g. 'http://127.0.0.1:4000'.")
        self.url = url
        self.persistence = persistence
        self.timeout = timeout
        self.transport = transport

    async def _connect(self) -> None:
        # Marked so that a cassette active in the test leaves the conversation itself alone.
        self._http = httpx.AsyncClient(timeout=self.timeout, headers={AGENT_HEADER: "a2a"})
        self._client = await create_a2a_client(self.url, httpx_client=self._http, transport=self.transport)

    def describe(self) -> str:
        over = f" over {self._client.transport}" if self._client is not None else ""
        return f"remote agent {self.url}{over}"


def a2a_agent(
    flows: Mapping[str, BaseNode],
    agent_card: Any = None,
    persistence: Persistence | None = None,
    transport: str | None = None,
    *,
    expose_errors: bool = False,
) -> InProcessAgent:
    """Serve ``flows`` in-process over the real A2A app (in-memory persistence unless given);
    ``transport="HTTP+JSON"`` talks to it over HTTP+JSON instead of JSON-RPC, and
    ``expose_errors=True`` puts a failed turn's exception text in its reply, as served agents
    do with ``--expose-errors``."""
    return InProcessAgent(flows, agent_card, persistence, transport, expose_errors=expose_errors)


def remote_agent(
    url: str, persistence: Persistence | None = None, timeout: float = 60.0, transport: str | None = None
) -> RemoteAgent:
    """A live A2A agent at ``url``, over the transport its card prefers or ``transport``
    (``"JSONRPC"``, ``"HTTP+JSON"``, ``"GRPC"``); with its ``persistence``, replies expose ``shared`` too."""
    return RemoteAgent(url, persistence, timeout, transport)
