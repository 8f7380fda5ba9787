"""The daemon's injectable clock: real time, or simulated time running ``speed`` times faster.

Every job asks the clock for "now" and sleeps through it, so the same daemon runs a site in
real time or a simulated day in minutes (demo, soak, tests).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    @property
    def speed(self) -> float:
        """Simulated seconds per real second (1.0 for the system clock)."""
        ...

    def now(self) -> datetime:
        """Current instant, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...

    def real_seconds(self, seconds: float) -> float:
        """Real (wall) seconds that ``seconds`` of this clock's time take."""
        ...

    def monotonic(self) -> float:
        """Seconds of this clock's time from an arbitrary origin; never steps (interval jobs run on it)."""
        ...


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def monotonic(self) -> float:
        return time.monotonic()


class AcceleratedClock:
    """Simulated time: starts at ``start`` and runs ``speed`` times faster than real time."""

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError(f"clock start must be timezone-aware, got {start!r}")
        if speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed!r}")
        self._start = start.astimezone(UTC)
        self._speed = float(speed)
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self._speed

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * self._speed


class VirtualClock:
    """Simulated time that moves only when slept through or advanced: I/O takes no simulated time.

    For deterministic replays and tests that drive the application's jobs themselves.
    """

    speed = float("inf")

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"clock start must be timezone-aware, got {start!r}")
        self._now = start.astimezone(UTC)
        self._start = self._now

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=max(0.0, seconds))

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def real_seconds(self, seconds: float) -> float:
        return 0.0

    def monotonic(self) -> float:
        return (self._now - self._start).total_seconds()
