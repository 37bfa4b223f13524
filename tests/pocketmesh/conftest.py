"""Helpers shared by the runtime tests."""

from __future__ import annotations

from typing import Any

import pytest

import pocketmesh


class FakeClock:
    """Records the waits the runtime asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Replace the runtime's sleep with a recorder."""
    clock = FakeClock()
    monkeypatch.setattr(pocketmesh.clock, "sleep", clock.sleep)
    return clock


def steps(result: Any) -> list[tuple[str, str | None]]:
    """A run's trace as (node id, action) pairs."""
    return [(step.node, step.action) for step in result.trace]
