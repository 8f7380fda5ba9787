"""Exponential backoff, the one value every retry loop uses (HTTP, MQTT, the inverter, storage)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

_MAX_DOUBLINGS = 60


@dataclass(frozen=True, slots=True)
class Backoff:
    """``first_s`` after the first failure, doubling with each further one, at most ``max_s``;
    each delay scaled by a random factor within [``low``, ``high``] (1, 1: no jitter)."""

    first_s: float
    max_s: float = math.inf
    low: float = 1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.first_s <= self.max_s:
            raise ValueError(f"Backoff needs 0 <= first_s <= max_s, got {self.first_s}..{self.max_s}")
        if not 0.0 <= self.low <= self.high:
            raise ValueError(f"Backoff jitter needs 0 <= low <= high, got {self.low}..{self.high}")

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1 = the first)."""
        base = min(self.max_s, self.first_s * 2.0 ** min(max(failures - 1, 0), _MAX_DOUBLINGS))
        if rng is None or self.low == self.high:
            return base * self.low
        return base * (self.low + (self.high - self.low) * rng.random())
