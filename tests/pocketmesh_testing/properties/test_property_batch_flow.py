"""The flow properties over flows with a BatchFlow: the mirror keeps the batch a batch, and
interrupting at any step inside a batch run in order, then resuming, ends as an uninterrupted run."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

from pocketmesh import BaseNode, BatchFlow, Flow
from pocketmesh_testing.properties import assert_resume_idempotent, assert_terminates
from pocketmesh_testing.properties.scripted import scripted_flow

DEV = settings.get_profile("dev")


class Fetch(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        shared.setdefault("fetched", []).append(params["page"])
        return "ok" if params["page"] != "broken" else "skip"


class Store(BaseNode):
    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared.setdefault("stored", []).append(params["page"])


class Pages(BatchFlow):
    async def prepare(self, shared: dict[str, Any], params: dict[str, Any]) -> list[dict[str, str]]:
        return [{"page": p} for p in ("home", "broken", "about")]


def build(parallel: bool = False) -> Flow:
    fetch = Fetch()
    fetch - "ok" >> Store()
    fetch - "skip" >> BaseNode(name="Skipped")
    start = BaseNode(name="Start")
    start >> Pages(fetch, name="Pages").set_options(parallel=parallel, max_concurrency=2) >> BaseNode(name="Report")
    return Flow(start, name="Crawler")


def test_the_mirror_of_a_batch_flow_is_a_batch_flow() -> None:
    mirror = scripted_flow(build(parallel=True))
    (pages,) = [n for n in mirror.node_ids()[1].values() if n.name == "Pages"]
    assert isinstance(pages, BatchFlow) and pages.parallel and pages.max_concurrency == 2


@pytest.mark.parametrize("parallel", [False, True])
def test_a_flow_with_a_batch_terminates(parallel: bool) -> None:
    assert_terminates(build(parallel), settings=DEV)  # actions scripted, inside the passes too


def test_resuming_inside_a_batch_changes_nothing() -> None:
    # In order only: parallel passes interleave differently after a resume, so their trace
    # (and the order of what they append) is not the uninterrupted run's; what parallel
    # passes keep across a crash is checked in tests/pocketmesh/test_batch_resume.py.
    assert_resume_idempotent(build, settings=DEV)
