"""A progress bar with an ETA for the long command-line runs (backtest, simulate).

Drawn on standard error, redrawn in place at most every REDRAW_S, and only after SHOW_AFTER_S (a
run of a few seconds shows nothing); silent when standard error is not a terminal (a pipe, a
log, systemd) or when the command prints JSON. No dependency: a dozen lines of what tqdm draws.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

SHOW_AFTER_S = 2.0
REDRAW_S = 0.2
WIDTH = 28


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """``progress(done)`` after each unit of ``total``; ``close()`` ends the line it drew (if any)."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str = "",
        enabled: bool | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, max(1, total), unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if now - self._started < SHOW_AFTER_S or (
            self._drawn_at is not None and now - self._drawn_at < REDRAW_S
        ):
            return
        self._drawn_at = now
        self.stream.write("\r" + self.line(done, now - self._started))
        self.stream.flush()

    def line(self, done: int, elapsed_s: float) -> str:
        share = min(max(done / self.total, 0.0), 1.0)
        filled = round(share * WIDTH)
        left = elapsed_s * (1.0 - share) / share if share > 0 else None
        eta = f"{_clock(left)} left" if left is not None else "estimating"
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{self.label} {share:4.0%} |{'#' * filled}{'.' * (WIDTH - filled)}| "
            f"{done}/{self.total}{unit}, {_clock(elapsed_s)} spent, {eta}"
        )

    def close(self) -> None:
        if self._drawn_at is not None:
            self.stream.write("\r\033[K")  # the table that follows starts on a clean line
            self.stream.flush()
            self._drawn_at = None
