"""The runtime's only way to wait: one place to swap for a fake clock in tests."""

from __future__ import annotations

import asyncio


async def sleep(seconds: float) -> None:
    """Wait ``seconds`` between retries (tests replace this with a fake clock)."""
    await asyncio.sleep(seconds)


def timeout(seconds: float) -> asyncio.Timeout:
    """The deadline of one execution attempt (tests replace this to expire it on cue)."""
    return asyncio.timeout(seconds)
