"""The daemon's PV and load forecast for the planning horizon.

With at least a day of the site's own measurements (read through the data manager) the forecast
comes from ``controller.forecast`` (the site's past only). Before that, it falls back to a
clear-sky model of the configured PV arrays (solar geometry, numpy) and a standard household
day shape scaled to the configured yearly consumption. The result says which one was used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from controller.config import ForecastConfig, PvArrayConfig
from controller.forecast import forecast_load, forecast_pv
from storage.datamanager import DataManager
from storage.records import DataStatus, Resolution

FloatArray = npt.NDArray[np.float64]
STEP = timedelta(minutes=15)
STEPS_PER_DAY = 96

# Share of a day's household consumption in each local hour: a typical European home
# (night base, morning and evening peaks); sums to 1.
LOAD_DAY_SHAPE: tuple[float, ...] = (
    0.026, 0.022, 0.020, 0.019, 0.019, 0.022, 0.033, 0.047, 0.048, 0.042, 0.040, 0.041,
    0.043, 0.042, 0.039, 0.039, 0.043, 0.052, 0.062, 0.067, 0.066, 0.058, 0.045, 0.033,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ForecastResult:
    pv_w: tuple[float, ...]
    load_w: tuple[float, ...]
    source: str  # "history" or "model"


def clear_sky_pv_w(
    arrays: Sequence[PvArrayConfig], latitude: float, longitude: float, times: Sequence[datetime]
) -> FloatArray:
    """PV power (W) of the arrays under a clear sky at the given instants (interval midpoints)."""
    ts = np.array([t.timestamp() for t in times], dtype=np.float64)
    day_of_year = np.array([t.astimezone(UTC).timetuple().tm_yday for t in times], dtype=np.float64)
    utc_hours = (ts % 86400.0) / 3600.0
    gamma = 2 * math.pi / 365.0 * (day_of_year - 1 + (utc_hours - 12) / 24)
    decl = (
        0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma) - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma)
    )  # fmt: skip
    eot_min = 229.18 * (
        0.000075 + 0.001868 * np.cos(gamma) - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma) - 0.040849 * np.sin(2 * gamma)
    )  # fmt: skip
    solar_time_h = utc_hours + (longitude * 4 + eot_min) / 60.0
    hour_angle = np.radians(15.0 * (solar_time_h - 12.0))
    lat = math.radians(latitude)
    cos_zenith = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    cos_zenith = np.clip(cos_zenith, 0.0, 1.0)
    zenith = np.arccos(cos_zenith)
    # solar azimuth measured from north, clockwise
    sin_az = -np.sin(hour_angle) * np.cos(decl) / np.maximum(np.sin(zenith), 1e-9)
    cos_az = (np.sin(decl) - np.sin(lat) * cos_zenith) / np.maximum(np.cos(lat) * np.sin(zenith), 1e-9)
    azimuth = np.arctan2(sin_az, cos_az)
    # Haurwitz clear-sky global irradiance, split into beam and diffuse (simple fixed fraction)
    ghi = np.where(
        cos_zenith > 0.01, 1098.0 * cos_zenith * np.exp(-0.057 / np.maximum(cos_zenith, 0.01)), 0.0
    )
    dni = np.where(cos_zenith > 0.01, 0.8 * ghi / np.maximum(cos_zenith, 0.01), 0.0)
    dhi = 0.2 * ghi
    total = np.zeros(len(times))
    for array in arrays:
        tilt = math.radians(array.tilt_deg)
        surface_az = math.radians(array.azimuth_deg)
        cos_inc = cos_zenith * math.cos(tilt) + np.sin(zenith) * math.sin(tilt) * np.cos(azimuth - surface_az)
        poa = dni * np.clip(cos_inc, 0.0, None) + dhi * (1 + math.cos(tilt)) / 2
        total += array.kwp * poa * (1 - array.losses_pct / 100.0)  # W per kWp at 1000 W/m2
    return np.clip(total, 0.0, None)


def standard_load_w(yearly_kwh: float, times: Sequence[datetime], tz: object) -> FloatArray:
    daily_kwh = yearly_kwh / 365.0
    hours = [t.astimezone(tz).hour for t in times]  # type: ignore[arg-type]
    return np.array([daily_kwh * LOAD_DAY_SHAPE[h] * 1000.0 for h in hours], dtype=np.float64)


class Forecaster:
    def __init__(self, config: ForecastConfig, data: DataManager, tz: object) -> None:
        self.config = config
        self.data = data
        self.tz = tz

    async def forecast(self, starts: Sequence[datetime], ends: Sequence[datetime]) -> ForecastResult:
        mids = [s + (e - s) / 2 for s, e in zip(starts, ends, strict=True)]
        learned = await self._from_history(mids)
        if learned is not None:
            return learned
        pv = clear_sky_pv_w(self.config.arrays, self.config.latitude, self.config.longitude, mids)
        load = standard_load_w(self.config.yearly_load_kwh, mids, self.tz)
        return ForecastResult(tuple(pv.tolist()), tuple(load.tolist()), "model")

    async def _from_history(self, mids: Sequence[datetime]) -> ForecastResult | None:
        if not mids:
            return None
        now = mids[0]
        end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        day_start = end.replace(hour=0, minute=0)
        start = day_start - timedelta(days=self.config.history_days)
        result = await self.data.history(["pv_w", "load_w"], start, end, resolution=Resolution.MIN15)
        if result.status is DataStatus.ERROR or result.data is None:
            return None
        history = result.data
        series: dict[str, FloatArray] = {}
        index = ((history.times - start.timestamp()) / STEP.total_seconds()).astype(np.int64)
        size = int((end - start) / STEP)
        keep = (index >= 0) & (index < size)
        for name in ("pv_w", "load_w"):
            field = history.fields.get(name)
            if field is None:
                return None
            grid = np.full(size, np.nan)
            grid[index[keep]] = field.mean[keep]
            series[name] = grid
        first_day = _first_usable_day(series, self.config.history_days)
        if first_day is None:
            return None
        offset = first_day * STEPS_PER_DAY
        ahead_steps = [int((m - end) / STEP) for m in mids]
        n_ahead = max(ahead_steps) + 1
        pv = forecast_pv(series["pv_w"][offset:], n_ahead, STEPS_PER_DAY)
        load = forecast_load(series["load_w"][offset:], n_ahead, STEPS_PER_DAY)
        return ForecastResult(
            tuple(float(pv[max(0, i)]) for i in ahead_steps),
            tuple(float(load[max(0, i)]) for i in ahead_steps),
            "history",
        )


def _first_usable_day(series: dict[str, FloatArray], days: int) -> int | None:
    """First day from which every day (today so far included) is at least 90 % complete; gaps in
    those days are filled in place by linear interpolation. None: less than one such day."""
    first = 0
    for d in range(days + 1):
        chunk = slice(d * STEPS_PER_DAY, (d + 1) * STEPS_PER_DAY)
        for values in series.values():
            part = values[chunk]
            if part.size and np.isfinite(part).mean() < 0.9:
                first = d + 1
    if days - first < 1:
        return None
    for values in series.values():
        tail = values[first * STEPS_PER_DAY :]
        good = np.isfinite(tail)
        if not good.any():
            return None
        positions = np.arange(tail.size)
        tail[~good] = np.interp(positions[~good], positions[good], tail[good])
    return first
