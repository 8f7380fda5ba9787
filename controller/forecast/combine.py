"""The parts a forecast is made of, as pure functions of the site's past (numpy, no I/O).

- Load: :func:`controller.forecast.history.forecast_load` (median of the recent days at each time of
  day, shifted by half the last day's median departure from it, pulled towards the latest reading) plus a share of the day type's own deviation (weekend
  days against all days, at the same local wall time): :func:`load_forecast_w`, over arrays, which
  the realistic backtest calls too; before there is any history, a standard household day scaled
  to the yearly consumption.
- PV from history: :func:`controller.forecast.history.forecast_pv`.
- PV from a model: the weather forecast (calibrated by the caller) or, without one, the
  clear-sky model scaled by how the last days compared with it.
- The model and the history forecast are blended with weights learned from the daily accuracy
  record (least squares over the recent days), or a prior until there are records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from controller.config.models import ForecastConfig
from controller.forecast.history import PERSISTENCE_HOURS, forecast_load, forecast_pv
from controller.forecast.pv_model import CLEAR_SKY_SCALE_LIMITS, clear_sky_pv_w, energy_ratio

FloatArray = npt.NDArray[np.float64]

# Share of a day's household consumption in each local hour: a typical European home
# (night base, morning and evening peaks); sums to 1.
LOAD_DAY_SHAPE: tuple[float, ...] = (
    0.026, 0.022, 0.020, 0.019, 0.019, 0.022, 0.033, 0.047, 0.048, 0.042, 0.040, 0.041,
    0.043, 0.042, 0.039, 0.039, 0.043, 0.052, 0.062, 0.067, 0.066, 0.058, 0.045, 0.033,
)  # fmt: skip

DAY_TYPE_WEIGHT = 0.3  # share of the weekend/workday deviation added to the all-days profile
DAY_TYPE_DAYS = 28  # days searched for the same wall time on days of each type
DAY_TYPE_MIN_DAYS = 2  # of each type, or no deviation is added
CLEAR_SKY_DAYS = 3  # days whose measured/clear-sky ratio scales the clear-sky model
# Before any measurement: a year's yield in central Europe (about 1050 kWh/kWp near Warsaw, PVGIS)
# over this clear-sky model's (1890 kWh/kWp there, south at 35 degrees, 14 % losses).
TYPICAL_CLEAR_SKY_SCALE = 0.55
MODEL_PRIOR_WEIGHT: dict[str, float] = {"weather": 0.8, "clear_sky": 0.0}
WEIGHT_DAYS = 28  # accuracy records the blend weight is learned from
WEIGHT_MIN_DAYS = 7
BLEND_WEIGHTS: tuple[float, ...] = tuple(k / 10 for k in range(11))


@dataclass(frozen=True, slots=True, eq=False)
class MeasuredHistory:
    """Gap-free measured PV and load on a uniform grid that starts at a UTC midnight."""

    start: datetime
    step: timedelta
    pv_w: FloatArray
    load_w: FloatArray

    def __post_init__(self) -> None:
        if self.pv_w.shape != self.load_w.shape or self.pv_w.ndim != 1:
            raise ValueError(f"MeasuredHistory: pv_w and load_w must be equal 1-d arrays, got "
                             f"{self.pv_w.shape} and {self.load_w.shape}")  # fmt: skip
        if timedelta(days=1) % self.step:
            raise ValueError(f"MeasuredHistory.step must divide a day, got {self.step}")

    @property
    def steps_per_day(self) -> int:
        return timedelta(days=1) // self.step

    @property
    def end(self) -> datetime:
        return self.start + self.step * self.pv_w.size

    def times(self) -> list[datetime]:
        return [self.start + self.step * i for i in range(self.pv_w.size)]

    def ahead_index(self, starts: Sequence[datetime]) -> npt.NDArray[np.int64]:
        """Position of each target interval after the end of the history (0 = the next one)."""
        return np.array([max(0, (s - self.end) // self.step) for s in starts], dtype=np.int64)


def standard_load_w(yearly_kwh: float, times: Sequence[datetime], tz: tzinfo) -> FloatArray:
    daily_kwh = yearly_kwh / 365.0
    return np.array(
        [daily_kwh * LOAD_DAY_SHAPE[t.astimezone(tz).hour] * 1000.0 for t in times], dtype=np.float64
    )


def local_seconds(times: Sequence[datetime], tz: tzinfo) -> npt.NDArray[np.int64]:
    """Local wall-clock time of each instant, as seconds since 1970-01-01 00:00 on that clock."""
    return np.array(
        [int(t.timestamp()) + int(t.astimezone(tz).utcoffset().total_seconds()) for t in times],  # type: ignore[union-attr]
        dtype=np.int64,
    )


def epoch_local_seconds(utc_s: npt.NDArray[np.int64], tz: tzinfo) -> npt.NDArray[np.int64]:
    """:func:`local_seconds` of instants given as UTC epoch seconds, one zone lookup per hour they
    fall in (zones change their offset on the hour)."""
    hours, at = np.unique(utc_s // 3600, return_inverse=True)
    lookups = [datetime.fromtimestamp(3600 * int(h), UTC) for h in hours.tolist()]
    offsets = local_seconds(lookups, tz) - 3600 * hours
    result: npt.NDArray[np.int64] = utc_s + offsets[at.reshape(utc_s.shape)]
    return result


def grid_local_seconds(history: MeasuredHistory, tz: tzinfo) -> npt.NDArray[np.int64]:
    """:func:`local_seconds` of the history's intervals."""
    step_s = int(history.step.total_seconds())
    utc_s = int(history.start.timestamp()) + step_s * np.arange(history.pv_w.size, dtype=np.int64)
    return epoch_local_seconds(utc_s, tz)


def _weekend(wall_seconds: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    weekday = (wall_seconds // 86400 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weekend: npt.NDArray[np.bool_] = weekday >= 5
    return weekend


def day_type_offset_w(history: MeasuredHistory, starts: Sequence[datetime], tz: tzinfo) -> FloatArray:
    """:func:`day_type_offset` of the history for the intervals starting at ``starts``."""
    if history.load_w.size == 0:
        return np.zeros(len(starts))
    return day_type_offset(history.load_w, grid_local_seconds(history, tz), local_seconds(starts, tz))


def day_type_offset(
    load_w: FloatArray, local: npt.NDArray[np.int64], targets: npt.NDArray[np.int64]
) -> FloatArray:
    """Per target (local wall seconds, :func:`local_seconds`): the median load of the same day type
    (workday or weekend) minus the median of all days, at the same local wall time over the last
    :data:`DAY_TYPE_DAYS` days of ``load_w`` (its intervals at the wall seconds ``local``); 0
    where either type has fewer than :data:`DAY_TYPE_MIN_DAYS` days."""
    offsets = np.zeros(targets.size)
    if load_w.size == 0:
        return offsets
    order = np.argsort(local, kind="stable")  # an autumn night's repeated hour: the first one found
    ordered = local[order]
    past = targets[:, None] - 86400 * np.arange(1, DAY_TYPE_DAYS + 1)[None, :]
    at = np.minimum(np.searchsorted(ordered, past), local.size - 1)
    index = np.where(ordered[at] == past, order[at], -1)
    values = np.where(index >= 0, load_w[np.maximum(index, 0)], np.nan)
    same_type = _weekend(past) == _weekend(targets)[:, None]
    same = np.where(same_type, values, np.nan)
    other = np.where(same_type, np.nan, values)
    enough = (np.isfinite(same).sum(axis=1) >= DAY_TYPE_MIN_DAYS) & (
        np.isfinite(other).sum(axis=1) >= DAY_TYPE_MIN_DAYS
    )
    if enough.any():
        offsets[enough] = _finite_median(same[enough]) - _finite_median(values[enough])
    return offsets


def _finite_median(rows: FloatArray) -> FloatArray:
    """``np.nanmedian(rows, axis=1)`` of rows with at least one finite value, without its
    masked-array path (a backtest takes this at every interval)."""
    ordered = np.sort(rows, axis=1)  # NaN last
    count = np.isfinite(rows).sum(axis=1)
    row = np.arange(rows.shape[0])
    median: FloatArray = (ordered[row, (count - 1) // 2] + ordered[row, count // 2]) / 2.0
    return median


def history_load_w(history: MeasuredHistory, starts: Sequence[datetime], tz: tzinfo) -> FloatArray:
    return load_forecast_w(
        history.load_w,
        grid_local_seconds(history, tz),
        history.ahead_index(starts),
        local_seconds(starts, tz),
        history.steps_per_day,
    )


def load_forecast_w(
    load_w: FloatArray,
    local: npt.NDArray[np.int64],
    ahead: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
    steps_per_day: int,
) -> FloatArray:
    """The load forecast from a uniform history ``load_w`` (its intervals at the local wall seconds
    ``local``) for the targets ``ahead`` intervals after its end, at the wall seconds ``targets``:
    :func:`forecast_load` plus :data:`DAY_TYPE_WEIGHT` of :func:`day_type_offset`, faded in."""
    base = forecast_load(load_w, int(ahead.max()) + 1, steps_per_day)[ahead]
    hours = (ahead + 1) * (24.0 / steps_per_day)
    # the latest reading dominates the first hours, the day type matters once it has faded
    fade_in = 1.0 - np.exp(-hours / PERSISTENCE_HOURS)
    offset = DAY_TYPE_WEIGHT * fade_in * day_type_offset(load_w, local, targets)
    result: FloatArray = np.maximum(base + offset, 0.0)
    return result


def history_pv_w(history: MeasuredHistory, starts: Sequence[datetime]) -> FloatArray:
    ahead = history.ahead_index(starts)
    values: FloatArray = forecast_pv(history.pv_w, int(ahead.max()) + 1, history.steps_per_day)[ahead]
    return values


def clear_sky_scale(history: MeasuredHistory, config: ForecastConfig) -> float | None:
    """How the last :data:`CLEAR_SKY_DAYS` days' PV compared with the clear-sky model of those
    intervals; None when that says nothing (no daylight, nothing measured)."""
    take = min(history.pv_w.size, CLEAR_SKY_DAYS * history.steps_per_day)
    times = history.times()[-take:]
    clear = clear_sky_pv_w(
        config.arrays, config.latitude, config.longitude, [t + history.step / 2 for t in times]
    )
    step_h = history.step / timedelta(hours=1)
    ratio = energy_ratio(history.pv_w[-take:], clear, min_energy_wh=100.0, step_h=step_h)
    return None if ratio is None else float(np.clip(ratio, *CLEAR_SKY_SCALE_LIMITS))


@dataclass(frozen=True, slots=True)
class ComponentErrors:
    """One past day's mean absolute PV error of w·model + (1 - w)·history for each w in
    :data:`BLEND_WEIGHTS`."""

    model_kind: str
    blend_mae_w: tuple[float, ...]


def blend_errors(model_w: FloatArray, history_w: FloatArray, measured_w: FloatArray) -> tuple[float, ...]:
    return tuple(
        float(np.mean(np.abs(w * model_w + (1.0 - w) * history_w - measured_w))) for w in BLEND_WEIGHTS
    )


def model_weight(kind: str, records: Sequence[ComponentErrors]) -> float:
    """Weight w of the model forecast of ``kind`` in w·m + (1 - w)·h: the one of
    :data:`BLEND_WEIGHTS` with the least mean absolute error over the last :data:`WEIGHT_DAYS`
    days scored with that kind; the prior until there are :data:`WEIGHT_MIN_DAYS` of them."""
    recent = [
        r.blend_mae_w for r in records if r.model_kind == kind and len(r.blend_mae_w) == len(BLEND_WEIGHTS)
    ]
    recent = recent[-WEIGHT_DAYS:]
    if len(recent) < WEIGHT_MIN_DAYS:
        return MODEL_PRIOR_WEIGHT[kind]
    return BLEND_WEIGHTS[int(np.argmin(np.sum(recent, axis=0)))]


@dataclass(frozen=True, slots=True, eq=False)
class Parts:
    """A forecast and what it was made of (NaN: a part had nothing for that interval)."""

    pv_w: FloatArray
    load_w: FloatArray
    pv_model_w: FloatArray  # the weather forecast where there is one, else the scaled clear-sky model
    pv_history_w: FloatArray | None
    weather: npt.NDArray[np.bool_]  # intervals whose model part is the weather forecast
    weights: dict[str, float]  # model weight per model kind
    clear_sky_scale: float
    pv_source: str
    load_source: str


def combine(
    starts: Sequence[datetime],
    config: ForecastConfig,
    tz: tzinfo,
    *,
    history: MeasuredHistory | None,
    weather_w: FloatArray | None = None,
    errors: Sequence[ComponentErrors] = (),
) -> Parts:
    """The forecast for the intervals starting at ``starts`` (all of one length: the history's
    step, or 15 minutes without history). ``weather_w``: calibrated weather PV, NaN where unknown."""
    step = history.step if history is not None else timedelta(minutes=15)
    mids = [s + step / 2 for s in starts]
    scale = clear_sky_scale(history, config) if history is not None else None
    clear = clear_sky_pv_w(config.arrays, config.latitude, config.longitude, mids)
    model = clear * (TYPICAL_CLEAR_SKY_SCALE if scale is None else scale)
    weather = np.zeros(len(starts), dtype=bool)
    if weather_w is not None:
        weather = np.isfinite(weather_w)
        model = np.where(weather, weather_w, model)
    weights = {kind: model_weight(kind, errors) for kind in MODEL_PRIOR_WEIGHT}
    model_source = "weather" if weather.all() else "weather+clear_sky" if weather.any() else "clear_sky"
    if history is None:
        load = standard_load_w(config.yearly_load_kwh, mids, tz)
        return Parts(model, load, model, None, weather, weights, TYPICAL_CLEAR_SKY_SCALE, model_source,
                     "standard")  # fmt: skip
    past_pv = history_pv_w(history, starts)
    weight = np.where(weather, weights["weather"], weights["clear_sky"])
    pv: FloatArray = np.maximum(weight * model + (1.0 - weight) * past_pv, 0.0)
    load = history_load_w(history, starts, tz)
    used_scale = TYPICAL_CLEAR_SKY_SCALE if scale is None else scale
    return Parts(pv, load, model, past_pv, weather, weights, used_scale, f"{model_source}+history", "history")
