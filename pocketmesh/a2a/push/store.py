"""``PushConfigStore``: each task's push notification configs, per owner, in a persistence backend."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks import PushNotificationConfigStore
from a2a.server.tasks.push_notification_config_store import normalize_push_notification_config
from a2a.types import TaskPushNotificationConfig
from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from ...errors import PersistenceError
from ..locks import KeyedLocks
from .policy import PushPolicy, PushTargetRefused

if TYPE_CHECKING:
    from ...persistence.base import Persistence

logger = logging.getLogger("pocketmesh.a2a")

_CACHED_TASKS = 10_000

PUSH_RUN_PREFIX = "a2a-push:"
"""Run-id namespace of stored push configs (one record per task), apart from runs and tasks."""


class PushConfigStore(PushNotificationConfigStore):
    """Stores the configs of task ``T`` under run id ``a2a-push:T`` as
    ``{"configs": [{"owner": ..., "config": {<TaskPushNotificationConfig JSON>}}]}``.

    Uses only the five-method persistence protocol, so configs live wherever the tasks do and
    survive restarts. A caller reads, replaces and deletes only its own configs; delivery reads
    them all. A URL the :class:`PushPolicy` refuses is never stored: the request fails with
    invalid params, naming the reason. Credentials in a config are stored as given, as the
    receiver needs them back: protect the store as you protect the tasks.

    Delivery asks for a task's configs on every event; the answer is kept ``cache_seconds``
    (default 1 s) and dropped whenever this store writes the task's configs, so a config set
    through another server sharing the backend reaches this one's deliveries within that time.
    """

    def __init__(
        self,
        persistence: Persistence,
        policy: PushPolicy,
        owner_resolver: OwnerResolver = resolve_user_scope,
        *,
        cache_seconds: float = 1.0,
    ) -> None:
        self.persistence = persistence
        self.policy = policy
        self._owner_of = owner_resolver
        # A save is read-modify-write of the task's whole record; one at a time per task.
        self._locks = KeyedLocks()
        self.cache_seconds = cache_seconds
        self._cache: OrderedDict[str, tuple[float, list[TaskPushNotificationConfig]]] = OrderedDict()

    @staticmethod
    def run_id_for(task_id: str) -> str:
        """The persistence run id holding the configs of task ``task_id``."""
        return f"{PUSH_RUN_PREFIX}{task_id}"

    async def set_info(
        self, task_id: str, notification_config: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        """Check the URL against the policy, then add or replace (same id) the caller's config."""
        stored = normalize_push_notification_config(task_id, notification_config)
        stored.ClearField("tenant")
        try:
            await self.policy.check(stored.url, must_resolve=False)
        except PushTargetRefused as error:
            raise InvalidParamsError(message=str(error), data={"url": stored.url[:200]}) from None
        owner = self._owner_of(context)
        async with self._locks.hold(task_id):
            entries = await self._entries(task_id)
            kept = [e for e in entries if not (e[0] == owner and e[1].id == stored.id)]
            kept.append((owner, stored))
            await self._save(task_id, kept)
        logger.debug("push config %s of task %s stored for owner %r", stored.id, task_id, owner)
        result = TaskPushNotificationConfig()
        result.CopyFrom(stored)
        return result

    async def get_info(self, task_id: str, context: ServerCallContext) -> list[TaskPushNotificationConfig]:
        """The caller's configs for the task, in the order they were first stored."""
        owner = self._owner_of(context)
        return [config for who, config in await self._entries(task_id) if who == owner]

    async def get_info_for_dispatch(self, task_id: str) -> list[TaskPushNotificationConfig]:
        """Every config of the task, whoever stored it (delivery calls them all)."""
        now = time.monotonic()
        cached = self._cache.get(task_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        configs = [config for _, config in await self._entries(task_id)]
        if self.cache_seconds > 0:
            self._cache[task_id] = (now, configs)
            self._cache.move_to_end(task_id)
            while len(self._cache) > _CACHED_TASKS:
                self._cache.popitem(last=False)
        return configs

    async def delete_info(self, task_id: str, context: ServerCallContext, config_id: str | None = None) -> None:
        """Delete the caller's config ``config_id`` (all of the caller's configs when ``None``);
        deleting what is not there is not an error."""
        owner = self._owner_of(context)
        async with self._locks.hold(task_id):
            entries = await self._entries(task_id)
            kept = [e for e in entries if not (e[0] == owner and (config_id is None or e[1].id == config_id))]
            if len(kept) == len(entries):
                return
            if kept:
                await self._save(task_id, kept)
            else:
                self._cache.pop(task_id, None)
                await self.persistence.delete_run(self.run_id_for(task_id))

    async def _entries(self, task_id: str) -> list[tuple[str, TaskPushNotificationConfig]]:
        record = await self.persistence.load_run(self.run_id_for(task_id))
        if record is None:
            return []
        configs = record.get("configs") if isinstance(record, dict) else None
        if not isinstance(configs, list):
            raise PersistenceError(
                f"the push config record {self.run_id_for(task_id)!r} is damaged (no 'configs' list); "
                f"delete that run from the persistence backend and register the configs again."
            )
        entries = []
        for item in configs:
            try:
                entries.append((str(item["owner"]), ParseDict(item["config"], TaskPushNotificationConfig())))
            except (KeyError, TypeError, ParseError) as error:
                raise PersistenceError(
                    f"a push config in {self.run_id_for(task_id)!r} is damaged ({error}); delete that run "
                    f"from the persistence backend and register the configs again."
                ) from error
        return entries

    async def _save(self, task_id: str, entries: list[tuple[str, TaskPushNotificationConfig]]) -> None:
        self._cache.pop(task_id, None)
        record: dict[str, Any] = {
            "configs": [{"owner": owner, "config": MessageToDict(config)} for owner, config in entries]
        }
        await self.persistence.save_run(self.run_id_for(task_id), record, {})
