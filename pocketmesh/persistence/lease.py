"""Leases: a per-run lock held in Redis for a limited time, renewed while its holder runs.

A lease is ``SET key token NX PX lease``; its holder renews it every ``lease / 3`` seconds. It
is *lost* when a renewal finds another token (or none) under the key, or when no renewal has
reached Redis before the lease would run out: from then on another process may hold the
run. A lost holder must write nothing more, so every write of a run a lease covers is
*fenced*: made by a script that first checks, inside Redis, that the key still holds the
holder's token, and refused (:class:`~pocketmesh.errors.RunLockLostError`) when it does not.
Callbacks registered with :meth:`Lease.on_lost` hear of the loss at once, so a turn can stop
before it even tries to write.

A release that cannot reach Redis (a restart, a network cut) is retried in the background
until it succeeds or the lease would have run out anyway, so a live holder's key does not
keep waiters out for the rest of its lease once Redis is back.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("pocketmesh.persistence")

DEFAULT_LEASE = 10.0
"""Seconds a run lock stays held without renewal (a crashed holder frees it after this long)."""

LOST_MARKER = "POCKETMESH_LOCK_LOST"
"""The error a fenced write script answers when the lock is not (or no longer) its holder's."""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
class Lease:
    """A held run lock: what :meth:`RedisPersistence.run_lock` yields.

    ``cover(run_id)`` fences the writes of one more run with this lease (the lock's own run is
    covered from the start); ``on_lost(callback)`` calls ``callback(detail)`` once the lease is
    lost (at once if it already is); ``lost`` says why it was lost, or is ``None``.
    """

    def __init__(self, fences: dict[str, Lease], run_id: str, key: str, token: str, seconds: float, expires: float) -> None:
        self.run_id = run_id
        self.key = key
        self.token = token
        self.seconds = seconds
        self.expires = expires
        """Event-loop time by which the lease runs out unless renewed (a safe underestimate)."""
        self.lost: str | None = None
        self._fences = fences
        self._covered: list[str] = []
        self._callbacks: list[Callable[[str], None]] = []
        self.cover(run_id)

    def cover(self, run_id: str) -> None:
        """Fence every write of ``run_id`` with this lease while it is held."""
        self._fences[run_id] = self
        self._covered.append(run_id)

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(detail)`` when the lease is lost."""
        if self.lost is not None:
            callback(self.lost)
        else:
            self._callbacks.append(callback)

    def lose(self, detail: str) -> None:
        """Record the loss (once) and tell every callback."""
        if self.lost is not None:
            return
        self.lost = detail
        logger.warning("lost the lock on run %r: %s", self.run_id, detail)
        for callback in self._callbacks:
            try:
                callback(detail)
            except Exception:  # one failing listener must not keep the others from hearing
                logger.exception("a lost-lock callback of run %r failed", self.run_id)

    def end(self) -> None:
        """Stop fencing: the holder has let go."""
        for run_id in self._covered:
            if self._fences.get(run_id) is self:
                del self._fences[run_id]

    def __repr__(self) -> str:
        state = f"lost: {self.lost}" if self.lost else "held"
        return f"Lease({self.run_id!r}, {state})"


async def keep(client: Any, lease: Lease) -> None:
    """Renew ``lease`` until cancelled; record its loss and return when it is lost."""
    loop = asyncio.get_running_loop()
    milliseconds = max(1, round(lease.seconds * 1000))
    pause = lease.seconds / 3
    while True:
        await asyncio.sleep(pause)
        sent = loop.time()
        left = lease.expires - sent
        if left <= 0:
            lease.lose(f"no renewal reached Redis within the {lease.seconds:g}s lease")
            return
        try:
            extended = await asyncio.wait_for(client.eval(EXTEND, 1, lease.key, lease.token, milliseconds), left)
        except Exception as error:  # noqa: BLE001 - unreachable for now: retried until the lease is out
            logger.debug("renewing the lock on run %r failed (%r); retrying", lease.run_id, error)
            pause = min(lease.seconds / 10, max(0.0, lease.expires - loop.time()))
            continue
        if not extended:
            lease.lose("the lock key holds another holder's token, or none: the lease ran out")
            return
        lease.expires = sent + lease.seconds
        pause = lease.seconds / 3


async def release_later(client: Any, lease: Lease) -> None:
    """Retry a release that failed, until it succeeds or the lease would have run out anyway."""
    loop = asyncio.get_running_loop()
    pause = 0.05
    while loop.time() < lease.expires:
        await asyncio.sleep(min(pause, max(0.0, lease.expires - loop.time())))
        try:
            await client.eval(RELEASE, 1, lease.key, lease.token)
            logger.info("released the lock on run %r once Redis answered again", lease.run_id)
            return
        except Exception:  # noqa: BLE001 - still unreachable
            pause = min(pause * 2, 1.0)


def milliseconds(name: str, value: float | datetime.timedelta | None) -> int | None:
    """``value`` (seconds or a timedelta) in whole milliseconds, at least 1; ``None`` stays ``None``."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    if not seconds > 0:
        raise ValueError(
            f"{name} must be a positive number of seconds (or a timedelta), got {value!r}; "
            f"pass None to keep finished runs forever."
        )
    return max(1, round(seconds * 1000))
