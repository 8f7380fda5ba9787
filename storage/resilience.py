"""Retries with exponential backoff and a circuit breaker, one pair per backend.

The breaker opens after ``failure_threshold`` consecutive failures; while open, callers skip the
backend entirely (a dead InfluxDB costs nothing per tick). After the reset time one probe is let
through (half-open): success closes the breaker, failure opens it again for twice as long, up to
``max_reset_s``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from drivers.backoff import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        reset_s: float = 1.0,
        max_reset_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.max_reset_s = max_reset_s
        self._monotonic = monotonic
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.total_failures = 0
        self.opened_count = 0
        self.last_error = ""
        self.last_success: datetime | None = None
        self.last_failure: datetime | None = None
        self._current_reset_s = reset_s
        self._opened_at = 0.0

    def allow(self) -> bool:
        """May the backend be called now? Moves an expired open breaker to half-open."""
        if self.state is BreakerState.OPEN:
            if self._monotonic() - self._opened_at < self._current_reset_s:
                return False
            self.state = BreakerState.HALF_OPEN
            log.info("%s: circuit half-open, probing", self.name)
        return True

    def success(self) -> None:
        if self.state is not BreakerState.CLOSED:
            log.info("%s: circuit closed again", self.name)
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self._current_reset_s = self.reset_s
        self.last_success = datetime.now(UTC)

    def failure(self, error: str) -> None:
        self.consecutive_failures += 1
        self.total_failures += 1
        self.last_error = error
        self.last_failure = datetime.now(UTC)
        if self.state is BreakerState.HALF_OPEN:
            self._current_reset_s = min(self._current_reset_s * 2, self.max_reset_s)
            self._open()
        elif self.state is BreakerState.CLOSED and self.consecutive_failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.opened_count += 1
        self._opened_at = self._monotonic()
        log.warning(
            "%s: circuit open for %.1f s after %d failures: %s",
            self.name,
            self._current_reset_s,
            self.consecutive_failures,
            self.last_error,
        )

    def report(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "total_failures": self.total_failures,
            "opened": self.opened_count,
            "last_error": self.last_error,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_failure": self.last_failure.isoformat() if self.last_failure else None,
        }


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base_delay_s: float,
    retry_on: tuple[type[BaseException], ...],
    what: str,
) -> T:
    """Run ``operation``; on one of ``retry_on`` wait base, 2*base, 4*base ... and try again."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts!r}")
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except retry_on as exc:
            if attempt == attempts:
                raise
            delay = Backoff(base_delay_s).delay_s(attempt)
            log.debug("%s failed (%s); attempt %d of %d in %.2f s", what, exc, attempt + 1, attempts, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
