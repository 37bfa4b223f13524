"""``PushConfigStore`` on every backend: configs per task and owner, kept in the store itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from a2a.types import TaskPushNotificationConfig
from a2a.utils.errors import InvalidParamsError

from pocketmesh import InMemoryPersistence, PersistenceError
from pocketmesh.a2a import PushPolicy
from pocketmesh.a2a.push import PushConfigStore

from ..persistence.conftest import BACKENDS, drop_backend, make_backend
from .test_task_store import context

POLICY = PushPolicy(allowed_hosts=["127.0.0.1"])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh backend of each kind (PostgreSQL and Redis where they run)."""
    store = make_backend(request.param, tmp_path)
    yield store
    drop_backend(store)


def config(config_id: str, url: str = "http://127.0.0.1:9/hook", **fields: Any) -> TaskPushNotificationConfig:
    return TaskPushNotificationConfig(id=config_id, url=url, **fields)


async def test_configs_are_kept_per_task_and_owner(backend: Any) -> None:
    store = PushConfigStore(backend, POLICY, cache_seconds=0)
    alice, bob = context("alice"), context("bob")
    await store.set_info("t-1", config("p1", token="a1"), alice)
    await store.set_info("t-1", config("p2"), alice)
    await store.set_info("t-1", config("p1", "http://127.0.0.1:9/bob"), bob)
    await store.set_info("t-2", config("p1"), alice)
    await store.set_info("t-1", config("p1", token="a1-new"), alice)  # same id: replaced, not added

    assert [(c.id, c.token) for c in await store.get_info("t-1", alice)] == [("p2", ""), ("p1", "a1-new")]
    assert [c.url for c in await store.get_info("t-1", bob)] == ["http://127.0.0.1:9/bob"]
    assert await store.get_info("t-1", context(None)) == []
    assert len(await store.get_info_for_dispatch("t-1")) == 3
    assert {c.task_id for c in await store.get_info_for_dispatch("t-1")} == {"t-1"}

    # A store made afresh on the same backend (a restarted server) reads the same configs.
    reopened = PushConfigStore(backend, POLICY, cache_seconds=0)
    assert [c.id for c in await reopened.get_info("t-1", alice)] == ["p2", "p1"]

    await reopened.delete_info("t-1", bob, "p1")
    await reopened.delete_info("t-1", bob, "p1")  # already gone: nothing happens
    assert await store.get_info("t-1", bob) == [] and len(await store.get_info("t-1", alice)) == 2
    await reopened.delete_info("t-1", alice)  # all of alice's
    assert await store.get_info_for_dispatch("t-1") == []
    assert [c.id for c in await store.get_info("t-2", alice)] == ["p1"]


async def test_a_refused_url_is_never_stored(backend: Any) -> None:
    store = PushConfigStore(backend, POLICY)
    with pytest.raises(InvalidParamsError, match="'10.0.0.1' is a private address") as refused:
        await store.set_info("t-1", config("p1", "http://10.0.0.1/hook"), context("alice"))
    assert refused.value.data == {"url": "http://10.0.0.1/hook"}
    assert await store.get_info_for_dispatch("t-1") == []
    assert await backend.load_run(store.run_id_for("t-1")) is None


async def test_a_config_without_an_id_takes_the_task_id() -> None:
    store = PushConfigStore(InMemoryPersistence(), POLICY)
    stored = await store.set_info("t-1", TaskPushNotificationConfig(url="http://127.0.0.1:9/hook"), context(None))
    assert (stored.id, stored.task_id) == ("t-1", "t-1")


async def test_a_damaged_record_says_which_run_to_delete() -> None:
    persistence = InMemoryPersistence()
    await persistence.save_run("a2a-push:t-1", {"configs": [{"owner": "alice"}]}, {})
    with pytest.raises(PersistenceError, match="'a2a-push:t-1' is damaged .* delete that run"):
        await PushConfigStore(persistence, POLICY).get_info_for_dispatch("t-1")


async def test_delivery_reads_are_cached_and_refreshed_by_this_store_s_writes() -> None:
    persistence = InMemoryPersistence()
    here, elsewhere = PushConfigStore(persistence, POLICY), PushConfigStore(persistence, POLICY)
    await here.set_info("t-1", config("p1"), context("alice"))
    assert [c.id for c in await here.get_info_for_dispatch("t-1")] == ["p1"]
    await elsewhere.set_info("t-1", config("p2"), context("alice"))  # another server on the same store
    assert [c.id for c in await here.get_info_for_dispatch("t-1")] == ["p1"]  # seen within cache_seconds
    await here.delete_info("t-1", context("bob"))  # nothing of bob's: nothing written, cache kept
    assert [c.id for c in await here.get_info_for_dispatch("t-1")] == ["p1"]
    await here.set_info("t-1", config("p3"), context("alice"))
    assert [c.id for c in await here.get_info_for_dispatch("t-1")] == ["p1", "p2", "p3"]
