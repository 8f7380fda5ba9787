"""Helpers for the forecaster tests: a settable clock, a data manager on a temp dir with measured
history, and Open-Meteo answers written from a formula (format as in tests/fixtures/weather)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from storage.datamanager import DataManager, StorageOptions

QUARTER = timedelta(minutes=15)


@dataclass
class SettableClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def data_manager(state_dir: Path, clock: SettableClock) -> AsyncIterator[DataManager]:
    async with DataManager(StorageOptions(state_dir=state_dir, sample_interval_s=60.0), now=clock) as data:
        yield data


async def record_quarters(
    data: DataManager, start: datetime, end: datetime, pv_w: Callable[[datetime], float], load_w: float
) -> None:
    """Minute samples over [start, end) whose 15-minute means are ``pv_w(quarter start)`` and ``load_w``."""
    times, pv, load = [], [], []
    moment = start
    while moment < end:
        quarter = moment.replace(minute=moment.minute - moment.minute % 15, second=0)
        times.append(moment.timestamp())
        pv.append(pv_w(quarter))
        load.append(load_w)
        moment += timedelta(minutes=1)
    await data.ingest(np.array(times), {"pv_w": np.array(pv), "load_w": np.array(load)})


def sunny_gti(end: datetime) -> float:
    """A clear June day in Warsaw on a south plane: W/m² of the quarter hour ending at ``end``."""
    hour = (end - QUARTER / 2).hour + (end - QUARTER / 2).minute / 60
    return (
        0.0 if not 2.25 < hour < 19.0 else round(880.0 * math.sin(math.pi * (hour - 2.25) / 16.75) ** 1.3, 1)
    )


def open_meteo_body(
    first_day: datetime, days: int, gti: Callable[[datetime], float] = sunny_gti, temperature_c: float = 25.0
) -> str:
    """An Open-Meteo minutely_15 answer (timezone GMT) for ``days`` days from ``first_day``."""
    ends = [first_day + QUARTER * (k + 1) for k in range(96 * days)]
    document = {
        "latitude": 52.22,
        "longitude": 21.0,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "minutely_15_units": {"time": "iso8601", "global_tilted_irradiance": "W/m²"},
        "minutely_15": {
            "time": [f"{e:%Y-%m-%dT%H:%M}" for e in ends],
            "global_tilted_irradiance": [gti(e) for e in ends],
            "temperature_2m": [temperature_c] * len(ends),
            "cloud_cover": [10] * len(ends),
        },
    }
    return json.dumps(document)


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def quarters(start: datetime, count: int) -> tuple[list[datetime], list[datetime]]:
    starts = [start + QUARTER * k for k in range(count)]
    return starts, [s + QUARTER for s in starts]
