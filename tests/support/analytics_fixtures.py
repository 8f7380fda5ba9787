"""Generated site history with known voltage events and a known grid impedance, for analytics tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from storage.datamanager import DataManager, StorageOptions

FloatArray = npt.NDArray[np.float64]
START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class Injected:
    """A block of minutes set to fixed voltages on one phase."""

    phase: str
    start: datetime
    volts: tuple[float, ...]  # one per minute

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=len(self.volts))


@dataclass
class SiteSamples:
    times: FloatArray  # epoch seconds, one sample per minute (at :30)
    columns: dict[str, FloatArray] = field(default_factory=dict)


def export_profile(minutes: int, rng: np.random.Generator, peak_w: float = 6000.0) -> FloatArray:
    """PV minus a small load: a daylight bell with cloud steps; negative at night (import)."""
    t = np.arange(minutes, dtype=np.float64) * 60.0
    hour = (t % 86400) / 3600
    bell = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)
    clouds = np.repeat(rng.uniform(0.3, 1.0, minutes // 5 + 1), 5)[:minutes]
    load = 400 + 300 * rng.random(minutes)
    pv = peak_w * bell * clouds
    return np.asarray(pv - load, dtype=np.float64)


def generate(
    days: int,
    *,
    impedance_ohm: float = 0.0,
    phases: tuple[str, ...] = ("grid_v1", "grid_v2", "grid_v3"),
    background: Callable[[FloatArray], FloatArray] | None = None,
    noise_v: float = 0.4,
    injected: tuple[Injected, ...] = (),
    seed: int = 1,
    start: datetime = START,
) -> SiteSamples:
    """``days`` of 1-min samples from ``start``; grid_v rises by R * P / V on every phase (single-phase feed)."""
    rng = np.random.default_rng(seed)
    minutes = days * 1440
    times = start.timestamp() + 30.0 + np.arange(minutes, dtype=np.float64) * 60.0
    export_w = export_profile(minutes, rng)
    pv = np.clip(export_w + 500, 0, None)
    samples = SiteSamples(times, {"grid_w": -export_w, "pv_w": pv, "load_w": pv + (-export_w)})
    base = 231.0 + (background(times) if background else 0.0)
    for name in phases:
        volts = base + impedance_ohm * export_w / base + rng.normal(0, noise_v, minutes)
        samples.columns[name] = np.asarray(volts, dtype=np.float64)
    for block in injected:
        first = round((block.start - start).total_seconds() / 60)
        samples.columns[block.phase][first : first + len(block.volts)] = block.volts
    return samples


@asynccontextmanager
async def stored(tmp: Path, samples: SiteSamples, now: datetime | None = None) -> AsyncIterator[DataManager]:
    """A data manager (not started: no background jobs) over a database holding ``samples``."""
    last = datetime.fromtimestamp(float(samples.times[-1]), UTC)
    clock = now or last + timedelta(minutes=5)
    dm = DataManager(
        StorageOptions(tmp / "state", sample_interval_s=60.0, max_gap_s=120.0), now=lambda: clock
    )
    await dm.store.open()
    try:
        await dm.ingest(samples.times, samples.columns)
        yield dm
    finally:
        await dm.close()
