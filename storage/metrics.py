"""Operation timings (median, p95, max over a bounded window) and an LRU cache with a time to live."""

from __future__ import annotations

import contextlib
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Timings:
    """Durations per operation name; keeps the last ``window`` samples of each.

    Each name's samples are a circular array of C doubles allocated once: a daemon timing every
    operation for months creates no object per sample to scatter over its small-object heap.
    """

    def __init__(self, window: int = 1024) -> None:
        if window < 1:
            raise ValueError(f"timings window must be >= 1, got {window!r}")
        self._window = window
        self._samples: dict[str, array[float]] = {}
        self._counts: dict[str, int] = {}
        self._errors: dict[str, int] = {}

    def add(self, name: str, seconds: float) -> None:
        samples = self._samples.get(name)
        if samples is None:
            samples = self._samples[name] = array("d", bytes(8 * self._window))
        count = self._counts.get(name, 0)
        samples[count % self._window] = seconds * 1000.0
        self._counts[name] = count + 1

    def error(self, name: str) -> None:
        self._errors[name] = self._errors.get(name, 0) + 1

    @contextlib.contextmanager
    def measure(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.error(name)
            raise
        finally:
            self.add(name, time.perf_counter() - start)

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, samples in sorted(self._samples.items()):
            values = np.array(samples[: min(self._counts[name], self._window)], dtype=np.float64)
            out[name] = {
                "count": float(self._counts[name]),
                "errors": float(self._errors.get(name, 0)),
                "median_ms": round(float(np.median(values)), 3),
                "p95_ms": round(float(np.percentile(values, 95)), 3),
                "max_ms": round(float(values.max()), 3),
            }
        return out


class TtlCache(Generic[K, V]):
    """Least-recently-used cache whose entries expire ``ttl_s`` after they were put.

    Age is measured on ``clock`` (seconds). An entry put at a time the clock has since gone back
    before counts as expired: what it holds was computed for a "now" that no longer applies.
    """

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 0 or ttl_s < 0:
            raise ValueError(f"cache needs max_entries >= 0 and ttl_s >= 0, got {max_entries!r}, {ttl_s!r}")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or self._expired(entry[0], self._clock()):
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.max_entries == 0:
            return
        now = self._clock()
        # expired entries go now: a key asked for once (a moving time window) is never asked again,
        # and up to max_entries large results would otherwise stay in memory for good
        for old in [k for k, (at, _) in self._entries.items() if self._expired(at, now)]:
            del self._entries[old]
            self.evictions += 1
        self._entries[key] = (now, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def _expired(self, put_at: float, now: float) -> bool:
        return not 0.0 <= now - put_at <= self.ttl_s

    def clear(self) -> None:
        self._entries.clear()

    def report(self) -> dict[str, float]:
        lookups = self.hits + self.misses
        return {
            "entries": float(len(self._entries)),
            "hits": float(self.hits),
            "misses": float(self.misses),
            "evictions": float(self.evictions),
            "hit_rate": round(self.hits / lookups, 4) if lookups else 0.0,
        }
