"""A water heater's hot-water draw learned from the tank's measured power.

Kept at its set temperature by its thermostat, a tank's element puts back what is drawn and what
the tank loses. Per local hour of the day, averaged over the whole days recorded, the element's
energy less the standing loss at the thermostat's mean temperature (``thermostat_c`` less half its
hysteresis) is the hot water drawn in that hour. The thermostat starts the element only once a
draw has taken the tank ``hysteresis_k`` down (about 1.2 kWh for 200 l and 5 K), so the learned
hours lag the draws by that much; what the tank holds more or less at a day's end than at its
start (a plan that heated it ahead) averages out over the days. The day's total is the element's
energy less a day's loss; the hours share it as their own excess over the loss does.

Until ``draw_learn_min_days`` whole days are recorded, the configured profile stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

import numpy as np
import numpy.typing as npt

from controller.config.loads import WaterHeaterConfig

FloatArray = npt.NDArray[np.float64]
HOURS = 24


@dataclass(frozen=True, slots=True)
class LearnedDraw:
    profile_kwh: tuple[float, ...]  # heat drawn per local hour, kWh
    days: int  # whole days it was learned from

    @property
    def per_day_kwh(self) -> float:
        return float(sum(self.profile_kwh))


def by_local_hour(
    times_s: Sequence[float] | FloatArray,
    mean_w: Sequence[float] | FloatArray,
    first: date,
    days: int,
    tz: tzinfo,
) -> FloatArray:
    """Hourly mean powers (bucket starts in epoch seconds) as energy per local hour of each of
    ``days`` days from ``first``, shape (days, 24), kWh; NaN where nothing was recorded (a
    23-hour day keeps one hour NaN, a 25-hour day's repeated hour is added)."""
    out = np.full((days, HOURS), np.nan)
    for t, w in zip(np.asarray(times_s, dtype=np.float64), np.asarray(mean_w, dtype=np.float64), strict=True):
        if not np.isfinite(w):
            continue
        local = datetime.fromtimestamp(float(t), UTC).astimezone(tz)
        day = (local.date() - first).days
        if 0 <= day < days:
            hour = local.hour
            out[day, hour] = (0.0 if np.isnan(out[day, hour]) else out[day, hour]) + w / 1000.0
    return out


def learned_draw(element_kwh: FloatArray, config: WaterHeaterConfig) -> LearnedDraw | None:
    """The draw per local hour from the element's energy per local hour of past days (rows,
    NaN: not recorded); None until ``config.draw_learn_min_days`` whole days are known."""
    if element_kwh.ndim != 2 or element_kwh.shape[1] != HOURS:
        raise ValueError(f"element_kwh: expected (days, {HOURS}) values, got {element_kwh.shape}")
    whole = element_kwh[np.all(np.isfinite(element_kwh), axis=1)]
    if whole.shape[0] < config.draw_learn_min_days:
        return None
    kept_c = config.thermostat_c - config.hysteresis_k / 2.0
    loss_kwh = max(config.loss_w_per_k * (kept_c - config.ambient_c) / 1000.0, 0.0)  # an hour's
    mean = whole.mean(axis=0)
    total = max(float(mean.sum()) - HOURS * loss_kwh, 0.0)
    excess = np.clip(mean - loss_kwh, 0.0, None)
    shape = excess / excess.sum() if excess.sum() > 0 else np.full(HOURS, 1.0 / HOURS)
    profile = np.minimum(total * shape, 50.0)  # the most draw_profile_kwh takes per hour
    return LearnedDraw(tuple(round(float(x), 4) for x in profile), int(whole.shape[0]))
