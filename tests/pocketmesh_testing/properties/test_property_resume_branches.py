"""assert_resume_idempotent compares traces: a resumed run that takes another branch is caught
even when it takes as many steps and leaves the same shared state."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

from pocketmesh import BaseNode, Flow
from pocketmesh_testing.properties import PropertyFailure, assert_resume_idempotent

DEV = settings(settings.get_profile("dev"), max_examples=10)


class Lookup:
    """Customer tiers looked up once per flow instance and kept in memory, not in shared state."""

    def __init__(self) -> None:
        self.tiers: dict[str, str] = {}


class Receive(BaseNode):
    def __init__(self, lookup: Lookup) -> None:
        super().__init__()
        self.lookup = lookup

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["customer"] = "c-42"
        self.lookup.tiers["c-42"] = "vip"


class Welcome(BaseNode):
    """Buggy: routes on the in-memory lookup, which a resumed run in a new process lacks, so it
    goes down the "regular" branch where the uninterrupted run went "vip"."""

    def __init__(self, lookup: Lookup) -> None:
        super().__init__()
        self.lookup = lookup

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
        return self.lookup.tiers.get(shared["customer"], "regular")


class Greet(BaseNode):
    """Both branches leave the same state behind."""

    async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> None:
        shared["greeted"] = True


def welcome_flow(welcome: type[BaseNode] | None = None) -> Flow:
    lookup = Lookup()
    receive = Receive(lookup)
    router = Welcome(lookup) if welcome is None else welcome(name="Welcome")
    receive >> router
    router - "vip" >> Greet(name="GreetVip")
    router - "regular" >> Greet(name="GreetRegular")
    return Flow(receive, name="Welcome")


def test_a_resume_that_takes_another_branch_with_the_same_steps_and_state_is_found() -> None:
    with pytest.raises(PropertyFailure) as caught:
        assert_resume_idempotent(welcome_flow, scripted=False, settings=DEV)
    message = str(caught.value)
    assert "ended differently from the uninterrupted run" in message
    assert "trace differs at entry 1" in message
    assert "'GreetRegular'" in message and "'GreetVip'" in message
    assert "(3 steps instead of 3)" in message


def test_a_router_that_decides_from_shared_state_passes() -> None:
    class Decide(BaseNode):
        async def finalize(self, shared: dict[str, Any], prep: Any, result: Any, params: dict[str, Any]) -> str:
            return "vip" if shared["customer"] == "c-42" else "regular"

    assert_resume_idempotent(lambda: welcome_flow(Decide), scripted=False, settings=DEV)
