"""Helpers shared by the runtime tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pocketmesh


class FakeClock:
    """Records the waits the runtime asks for instead of sleeping, and decides which attempt
    deadlines pass: ``overruns`` lists, per deadline set, whether it passes (True: the attempt
    is interrupted at its first wait) or never comes (False); once it is used up, none pass."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.deadlines: list[float] = []
        self.overruns: list[bool] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def timeout(self, seconds: float) -> asyncio.Timeout:
        self.deadlines.append(seconds)
        overrun = self.overruns.pop(0) if self.overruns else False
        return asyncio.timeout(0 if overrun else None)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Replace the runtime's sleep and attempt deadlines with the fake's."""
    clock = FakeClock()
    monkeypatch.setattr(pocketmesh.clock, "sleep", clock.sleep)
    monkeypatch.setattr(pocketmesh.clock, "timeout", clock.timeout)
    return clock


def steps(result: Any) -> list[tuple[str, str | None]]:
    """A run's trace as (node id, action) pairs."""
    return [(step.node, step.action) for step in result.trace]
