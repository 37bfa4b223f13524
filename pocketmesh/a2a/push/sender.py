"""``PushSender``: every task event, POSTed to each of the task's push configs, retried with backoff.

The SDK calls :meth:`PushSender.send_notification` inline, between a task's events; the sender
only queues the event there, so neither looking up the task's configs nor a slow or dead
receiver holds the task up. A dispatcher per task reads the configs for each event, in order,
and each config has its own queue and worker, which delivers its events one by one, in order.

One delivery: the URL is checked against the :class:`~pocketmesh.a2a.push.PushPolicy` on a fresh
resolution, then the request goes to the checked addresses themselves (the ``Host`` header and,
for https, the TLS server name still name the host), so a name that re-resolves elsewhere in the
meantime changes nothing. The body is the event as a ``StreamResponse`` (``{"task": ...}``,
``{"statusUpdate": ...}``, ``{"artifactUpdate": ...}``); headers carry the config's token
(``X-A2A-Notification-Token``) and its ``authentication`` (``Authorization: <scheme>
<credentials>``). Redirects are not followed and proxies from the environment are not used.

A connection failure, a timeout, HTTP 429 or 5xx is retried after ``first_delay``, then
``factor`` times longer each time (at most ``max_delay``, at least what ``Retry-After`` asks), up
to ``attempts`` tries in all; any other answer, or a target the policy refuses, ends the
delivery at once. Failures are logged under ``pocketmesh.a2a``; they never fail the task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from a2a.server.tasks import PushNotificationSender
from a2a.server.tasks.push_notification_sender import PushNotificationEvent
from a2a.types import TaskPushNotificationConfig
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import MessageToDict

from ... import clock
from .policy import PushPolicy, PushTarget, PushTargetRefused
from .store import PushConfigStore

logger = logging.getLogger("pocketmesh.a2a")

Sleep = Callable[[float], Awaitable[Any]]
TOKEN_HEADER = "X-A2A-Notification-Token"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one event is offered to a receiver."""

    attempts: int = 5
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be a whole number >= 1, got {self.attempts!r}; e.g. attempts=5.")
        for name in ("first_delay", "factor", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"RetryPolicy.{name} must be a number >= 0, got {value!r}.")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based)."""
        return float(min(self.max_delay, self.first_delay * self.factor ** (failures - 1)))


@dataclass
class _Outcome:
    delivered: bool
    retry: bool
    detail: str
    retry_after: float = 0.0


class PushSender(PushNotificationSender):
    """Queues each task event for every push config of the task and delivers it in the background."""

    def __init__(
        self,
        store: PushConfigStore,
        policy: PushPolicy,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        sleep: Sleep | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = http
        self._timeout = timeout
        self._events: dict[str, list[PushNotificationEvent]] = {}
        self._dispatchers: dict[str, asyncio.Task[None]] = {}
        self._queues: dict[tuple[str, str, str], list[tuple[TaskPushNotificationConfig, dict[str, Any]]]] = {}
        self._workers: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    async def send_notification(self, task_id: str, event: PushNotificationEvent) -> None:
        """Queue ``event`` for the task's configs; returns before looking them up or delivering."""
        copy = type(event)()
        copy.CopyFrom(event)  # the SDK may go on changing the task it passed
        self._events.setdefault(task_id, []).append(copy)
        if task_id not in self._dispatchers:
            self._dispatchers[task_id] = asyncio.get_running_loop().create_task(self._dispatch(task_id))

    async def drain(self) -> None:
        """Wait until every queued event has been delivered or given up on."""
        while self._dispatchers or self._workers:
            await asyncio.gather(*self._dispatchers.values(), *self._workers.values(), return_exceptions=True)

    async def _dispatch(self, task_id: str) -> None:
        try:
            events = self._events[task_id]
            while events:
                event = events.pop(0)
                try:
                    configs = await self.store.get_info_for_dispatch(task_id)
                except Exception:
                    logger.exception("could not read the push configs of task %s; its event is not delivered", task_id)
                    continue
                if not configs:
                    continue
                payload = MessageToDict(to_stream_response(event))
                for config in configs:
                    key = (task_id, config.id, config.url)
                    self._queues.setdefault(key, []).append((config, payload))
                    if key not in self._workers:
                        self._workers[key] = asyncio.get_running_loop().create_task(self._work(key))
        finally:
            self._events.pop(task_id, None)
            self._dispatchers.pop(task_id, None)

    async def aclose(self, grace: float = 5.0) -> None:
        """Give queued deliveries ``grace`` seconds to finish, cancel the rest, close the client."""
        if self._dispatchers or self._workers:
            try:
                await asyncio.wait_for(self.drain(), grace)
            except asyncio.TimeoutError:
                left = sum(len(q) for q in self._queues.values()) + sum(len(e) for e in self._events.values())
                logger.warning("stopping with %d push notification(s) undelivered", left)
                running = [*self._dispatchers.values(), *self._workers.values()]
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _work(self, key: tuple[str, str, str]) -> None:
        try:
            queue = self._queues[key]
            while queue:
                config, payload = queue.pop(0)
                await self._deliver(key[0], config, payload)
        finally:
            self._queues.pop(key, None)
            self._workers.pop(key, None)

    async def _deliver(self, task_id: str, config: TaskPushNotificationConfig, payload: dict[str, Any]) -> bool:
        for attempt in range(1, self.retry.attempts + 1):
            outcome = await self._post_once(config, payload)
            if outcome.delivered:
                logger.debug("push notification for task %s delivered to %s", task_id, config.url)
                return True
            if not outcome.retry:
                logger.error("push notification for task %s to %s not delivered: %s", task_id, config.url, outcome.detail)
                return False
            if attempt == self.retry.attempts:
                break
            wait = max(self.retry.delay(attempt), min(outcome.retry_after, self.retry.max_delay))
            logger.warning(
                "push notification for task %s to %s failed (attempt %d of %d: %s); retrying in %.1fs",
                task_id, config.url, attempt, self.retry.attempts, outcome.detail, wait,
            )
            # The runtime's clock unless one was given: a test's fake clock governs retries here too.
            await (self._sleep or clock.sleep)(wait)
        logger.error(
            "push notification for task %s to %s given up after %d attempts: %s",
            task_id, config.url, self.retry.attempts, outcome.detail,
        )
        return False

    async def _post_once(self, config: TaskPushNotificationConfig, payload: dict[str, Any]) -> _Outcome:
        try:
            target = await self.policy.check(config.url, must_resolve=True)
        except PushTargetRefused as error:
            # A name that does not resolve now may resolve later; a refused address will not change.
            return _Outcome(False, error.unresolved, error.reason)
        failures = []
        for address in target.addresses:
            try:
                response = await self._client().post(
                    target.url_for(address), json=payload, headers=self._headers(config, target), extensions=self._tls(target)
                )
            except httpx.TransportError as error:
                failures.append(f"{address}: {type(error).__name__}: {error}")
                continue
            return self._judge(response)
        return _Outcome(False, True, "; ".join(failures) or "no address to connect to")

    @staticmethod
    def _judge(response: httpx.Response) -> _Outcome:
        status = response.status_code
        if 200 <= status < 300:
            return _Outcome(True, False, str(status))
        retry_after = response.headers.get("retry-after", "")
        wait = float(retry_after) if retry_after.isdigit() else 0.0
        retry = status == 429 or status >= 500
        return _Outcome(False, retry, f"HTTP {status} {response.reason_phrase}".strip(), wait)

    @staticmethod
    def _headers(config: TaskPushNotificationConfig, target: PushTarget) -> dict[str, str]:
        headers = {"Host": target.host_header}
        if config.token:
            headers[TOKEN_HEADER] = config.token
        auth = config.authentication
        if config.HasField("authentication") and auth.scheme:
            headers["Authorization"] = f"{auth.scheme} {auth.credentials}".strip()
        return headers

    @staticmethod
    def _tls(target: PushTarget) -> dict[str, Any]:
        # Connected by address, TLS must still name (and verify) the host.
        return {"sni_hostname": target.host} if target.scheme == "https" else {}

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, trust_env=False, follow_redirects=False)
        return self._http
