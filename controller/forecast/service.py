"""The daemon's PV and load forecast for the planning horizon, and how good it has been.

Each call reads the site's recent 15-minute history through the data manager and combines
(:func:`controller.forecast.combine.combine`):

- PV: the weather forecast (``[forecast.weather]``, :mod:`controller.forecast.weather`) times a
  calibration factor (measured over forecast PV of the last ``calibration_days``, clipped to
  0.5..1.5), or without one the clear-sky model scaled by the last days; blended with the
  forecast from the site's own PV history once there is a day of it, with weights learned from
  the accuracy record;
- load: the site's history by time of day and day type, pulled towards the latest reading; a
  standard household day scaled to ``yearly_load_kwh`` until there is a day of history. With
  ``net_of_loads`` (the site has ``[[loads]]``) the history is the rest of the house: what the
  flexible loads drew (``flex_loads_w``, recorded with each reading) is taken out of the measured
  load, since the plan adds the loads' own runs on top.

For accuracy, the forecast for the next local day as it stood when that day began is kept; once
the day has been measured its mean absolute errors (and a "same as yesterday" forecast's) are
stored in the data manager's state, logged as a ``forecast.accuracy`` event, and summarised in
every :class:`ForecastResult` and in :meth:`Forecaster.health`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from controller.config.models import ForecastConfig
from controller.forecast.accuracy import (
    AccuracyDataError,
    AccuracySummary,
    DayAccuracy,
    DayAhead,
    score_day,
    summarise,
)
from controller.forecast.combine import LOAD_DAY_SHAPE, MeasuredHistory, Parts, combine, standard_load_w
from controller.forecast.errors import ErrorTable, history_spread
from controller.forecast.pv_model import calibration_factor, clear_sky_pv_w
from controller.forecast.weather import WeatherService
from drivers.days import day_window
from drivers.http import RetryPolicy
from storage import StorageError, write_or_log
from storage.datamanager import DataManager
from storage.records import DataStatus, EventRecord, JsonValue, Resolution

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
STEP = timedelta(minutes=15)
STEPS_PER_DAY = 96
RECORDS_KEY = "forecast.accuracy"
DAY_AHEAD_KEY = "forecast.day_ahead"
KEEP_RECORDS = 90

__all__ = ["LOAD_DAY_SHAPE", "ForecastResult", "Forecaster", "clear_sky_pv_w", "standard_load_w"]


@dataclass(frozen=True, slots=True)
class ForecastResult:
    pv_w: tuple[float, ...]
    load_w: tuple[float, ...]
    source: str  # "history" (the site's measurements were used) or "model"
    pv_source: str = "clear_sky"  # e.g. "weather+history", "weather+clear_sky", "clear_sky"
    load_source: str = "standard"  # "history" or "standard"
    weather: str = "off"  # off | fresh | stale | unavailable (see WeatherService.status)
    stale: bool = False  # a weather source is configured but its forecast is old or missing
    calibration: float = 1.0  # applied to the weather forecast
    weather_weight: float = 0.0  # share of the weather forecast in the blend with history
    accuracy: AccuracySummary | None = None


@dataclass(frozen=True, slots=True, eq=False)
class _Grid:
    """The measured history on the 15-minute grid from ``start`` (a UTC midnight); NaN = gap."""

    start: datetime
    pv_w: FloatArray
    load_w: FloatArray

    def window(self, start: datetime, count: int) -> tuple[FloatArray, FloatArray]:
        first = (start - self.start) // STEP
        index = np.arange(first, first + count)
        inside = (index >= 0) & (index < self.pv_w.size)
        pv, load = np.full(count, np.nan), np.full(count, np.nan)
        pv[inside], load[inside] = self.pv_w[index[inside]], self.load_w[index[inside]]
        return pv, load


class Forecaster:
    def __init__(
        self,
        config: ForecastConfig,
        data: DataManager,
        tz: tzinfo,
        *,
        http_policy: RetryPolicy | None = None,
        net_of_loads: bool = False,
    ) -> None:
        self.data = data
        self.net_of_loads = net_of_loads
        self.tz = tz
        self.weather = WeatherService(config, data, http_policy=http_policy)
        self._config = config
        self._records: list[DayAccuracy] = []
        self._day_ahead: dict[date, DayAhead] = {}
        self._loaded = False
        self.last: ForecastResult | None = None
        self._errors: tuple[tuple[date, int], ErrorTable] | None = None

    @property
    def config(self) -> ForecastConfig:
        return self._config

    @config.setter
    def config(self, config: ForecastConfig) -> None:
        self._config = config
        self.weather.config = config

    async def close(self) -> None:
        """Stop a weather fetch still under way (call when the daemon stops)."""
        await self.weather.close()

    @property
    def records(self) -> tuple[DayAccuracy, ...]:
        """Scored days, oldest first (at most the last 90)."""
        return tuple(self._records)

    def accuracy(self, days: int = 7) -> AccuracySummary:
        return summarise(self._records, days)

    def health(self) -> dict[str, JsonValue]:
        """The forecast's state for health reports (MQTT, HTTP): sources, staleness, accuracy."""
        now = self.data.now()
        last = self.last
        return {
            "pv_source": None if last is None else last.pv_source,
            "load_source": None if last is None else last.load_source,
            "weather": self.weather.status(now),
            "weather_error": self.weather.last_error or None,
            "weather_fetched_at": None
            if self.weather.fetched_at is None
            else self.weather.fetched_at.isoformat(),
            "stale": False if last is None else last.stale,
            "calibration": None if last is None else round(last.calibration, 3),
            "accuracy": self.accuracy().to_json(),
        }

    async def forecast(self, starts: Sequence[datetime], ends: Sequence[datetime]) -> ForecastResult:
        if len(starts) != len(ends):
            raise ValueError(f"forecast: {len(starts)} starts but {len(ends)} ends")
        if not starts:
            return ForecastResult((), (), "model", accuracy=self.accuracy())
        now = self.data.now()
        await self._load_state()
        grid = await self._read_history(now)
        if grid is not None:
            await self._score_finished_days(grid, now)
        await self.weather.update(now, max(ends))
        status = self.weather.status(now)
        weather_w: FloatArray | None = None
        calibration = 1.0
        if status in ("fresh", "stale"):
            raw = self.weather.values(list(starts))
            calibration = self._calibration(grid, now)
            weather_w = raw * calibration
        history = _usable_history(grid, self.config.history_days) if grid is not None else None
        errors = [e for r in self._records if (e := r.component_errors()) is not None]
        parts = combine(starts, self.config, self.tz, history=history, weather_w=weather_w, errors=errors)
        await self._keep_day_ahead(starts, parts, now)
        result = ForecastResult(
            pv_w=tuple(float(v) for v in parts.pv_w),
            load_w=tuple(float(v) for v in parts.load_w),
            source="history" if history is not None else "model",
            pv_source=parts.pv_source,
            load_source=parts.load_source,
            weather=status,
            stale=status in ("stale", "unavailable"),
            calibration=calibration,
            weather_weight=parts.weights["weather"] if parts.weather.any() and history is not None else 0.0,
            accuracy=self.accuracy(),
        )
        self.last = result
        return result

    async def errors(self, horizon_hours: float) -> ErrorTable | None:
        """How far the net load departed from :mod:`controller.forecast.history`'s hindcasts of the site's
        history up to ``horizon_hours`` ahead (for the recourse planner); made once a UTC day, in
        a worker thread (a second or so of numpy). None: less than a day of history."""
        n_ahead = round(horizon_hours * STEPS_PER_DAY / 24)
        now = self.data.now()
        key = (now.astimezone(UTC).date(), n_ahead)
        if self._errors is not None and self._errors[0] == key:
            return self._errors[1]
        grid = await self._read_history(now)
        history = _usable_history(grid, self.config.history_days) if grid is not None else None
        if history is None:
            return None
        table = await asyncio.to_thread(history_spread, history.pv_w, history.load_w, STEPS_PER_DAY, n_ahead)
        self._errors = (key, table)
        return table

    def _calibration(self, grid: _Grid | None, now: datetime) -> float:
        if grid is None:
            return 1.0
        end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        count = self.config.calibration_days * STEPS_PER_DAY
        start = end - STEP * count
        measured, _ = grid.window(start, count)
        forecast = self.weather.values([start + STEP * i for i in range(count)])
        kwp = sum(a.kwp for a in self.config.arrays)
        factor = calibration_factor(measured, forecast, kwp=kwp, step_h=0.25)
        return 1.0 if factor is None else factor

    async def _read_history(self, now: datetime) -> _Grid | None:
        end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        start = end.replace(hour=0, minute=0) - timedelta(days=self.config.history_days)
        names = ["pv_w", "load_w", *(["flex_loads_w"] if self.net_of_loads else [])]
        result = await self.data.history(names, start, end, resolution=Resolution.MIN15)
        if result.status is DataStatus.ERROR or result.data is None:
            log.warning("forecast without the site's history: %s", result.message)
            return None
        history = result.data
        size = (end - start) // STEP
        index = ((history.times - start.timestamp()) // STEP.total_seconds()).astype(np.int64)
        keep = (index >= 0) & (index < size)
        series: list[FloatArray] = []
        for name in names:
            values = np.full(size, np.nan)
            field = history.fields.get(name)
            if field is not None:
                values[index[keep]] = field.mean[keep]
            series.append(values)
        if self.net_of_loads:
            # a quarter without the loads' record (before they were configured): none taken out
            series[1] = np.maximum(series[1] - np.nan_to_num(series[2], nan=0.0), 0.0)
        return _Grid(start, series[0], series[1])

    async def _keep_day_ahead(self, starts: Sequence[datetime], parts: Parts, now: datetime) -> None:
        """Keep the forecast for the next local day when it covers that whole day."""
        day = now.astimezone(self.tz).date() + timedelta(days=1)
        begin, end = day_window(day, self.tz)
        first = next((i for i, s in enumerate(starts) if s == begin), None)
        count = (end - begin) // STEP
        if first is None or first + count > len(starts) or starts[first + count - 1] != end - STEP:
            return
        span = slice(first, first + count)
        self._day_ahead[day] = DayAhead(
            day, begin, STEP, parts.pv_w[span], parts.load_w[span], parts.pv_model_w[span],
            None if parts.pv_history_w is None else parts.pv_history_w[span],
            "weather" if parts.weather[span].all() else "clear_sky",
        )  # fmt: skip
        await self._put(DAY_AHEAD_KEY, {d.isoformat(): a.to_json() for d, a in self._day_ahead.items()})

    async def _score_finished_days(self, grid: _Grid, now: datetime) -> None:
        measured_until = grid.start + STEP * grid.pv_w.size
        for day in sorted(self._day_ahead):
            ahead = self._day_ahead[day]
            count = ahead.pv_w.size
            if ahead.start + STEP * count > measured_until:
                continue
            del self._day_ahead[day]
            pv, load = grid.window(ahead.start, count)
            pv_before, load_before = grid.window(ahead.start - timedelta(days=1), count)
            record = score_day(ahead, pv, load, pv_before, load_before)
            if record is None:
                log.info("forecast accuracy for %s not scored: too little of the day was measured", day)
            else:
                await self._add_record(record, now)
            await self._put(DAY_AHEAD_KEY, {d.isoformat(): a.to_json() for d, a in self._day_ahead.items()})

    async def _add_record(self, record: DayAccuracy, now: datetime) -> None:
        self._records = [*[r for r in self._records if r.day != record.day][-(KEEP_RECORDS - 1) :], record]
        await self._put(RECORDS_KEY, [r.to_json() for r in self._records])
        naive = (
            "" if record.pv_naive_mae_w is None or record.load_naive_mae_w is None
            else f" (same as yesterday: {record.pv_naive_mae_w:.0f} W, {record.load_naive_mae_w:.0f} W)"
        )  # fmt: skip
        message = (
            f"{record.day}: day-ahead forecast MAE PV {record.pv_mae_w:.0f} W, load {record.load_mae_w:.0f} W"
            f"{naive}; PV {record.pv_kwh:.1f} kWh measured, {record.pv_forecast_kwh:.1f} kWh forecast"
        )
        log.info("%s", message)
        event = EventRecord(now, "forecast.accuracy", message, data=record.to_json())
        await write_or_log("forecast accuracy event", self.data.log_event(event), log)

    async def _load_state(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            records, day_ahead = (
                await self.data.get_state(RECORDS_KEY),
                await self.data.get_state(DAY_AHEAD_KEY),
            )
        except StorageError as exc:
            log.warning("cannot read the forecast accuracy record: %s", exc)
            return
        try:
            if isinstance(records, list):
                self._records = [DayAccuracy.from_json(r) for r in records if isinstance(r, dict)]
            if isinstance(day_ahead, dict):
                self._day_ahead = {
                    date.fromisoformat(k): DayAhead.from_json(v)
                    for k, v in day_ahead.items()
                    if isinstance(v, dict)
                }
        except (AccuracyDataError, ValueError) as exc:
            log.warning("ignoring an unreadable forecast accuracy record: %s", exc)

    async def _put(self, key: str, value: JsonValue) -> None:
        await write_or_log(f"forecast state {key}", self.data.put_state(key, value), log)


def _usable_history(grid: _Grid, days: int) -> MeasuredHistory | None:
    """The history from the first day after which every day (today so far included) is at least
    90 % complete, gaps filled by linear interpolation; None: less than one such day."""
    series = (grid.pv_w.copy(), grid.load_w.copy())
    first = 0
    for d in range(days + 1):
        chunk = slice(d * STEPS_PER_DAY, (d + 1) * STEPS_PER_DAY)
        for values in series:
            part = values[chunk]
            if part.size and np.isfinite(part).mean() < 0.9:
                first = d + 1
    if days - first < 1:
        return None
    tails = []
    for values in series:
        tail = values[first * STEPS_PER_DAY :]
        good = np.isfinite(tail)
        if not good.any():
            return None
        positions = np.arange(tail.size)
        tail[~good] = np.interp(positions[~good], positions[good], tail[good])
        tails.append(tail)
    return MeasuredHistory(grid.start + timedelta(days=first), STEP, tails[0], tails[1])
