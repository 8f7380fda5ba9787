"""A water heater's hot-water draw learned from the tank's measured power.

Over a day, a tank's element puts back what was drawn and what the tank lost: the day's draw is
the element's energy less a day's standing loss at the thermostat's mean temperature
(``thermostat_c`` less half its hysteresis), averaged over the whole days recorded (what the tank
holds more or less at a day's end than at its start, a plan that heated it ahead, averages out).

How the day's draw falls over its hours shows only while the tank is kept at its set temperature
by its own thermostat: then the element's energy in each local hour, less that hour's loss, is
what was drawn (lagging the draws by what takes the tank ``hysteresis_k`` down, about 1.2 kWh for
200 l and 5 K). So the hours are learned from the whole days the tank spent on its thermostat
(recorded as ``flex_load_<name>_own``); until there are ``draw_learn_min_days`` of them the day's
learned draw is spread as the configured profile spreads it. Until ``draw_learn_min_days`` whole
days are recorded at all, the configured profile stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

import numpy as np
import numpy.typing as npt

from controller.config.loads import WaterHeaterConfig
from controller.loads.thermal import DRAW_SHAPE

FloatArray = npt.NDArray[np.float64]
HOURS = 24
OWN_SHARE = 0.999  # an hour on its thermostat: all of its readings were


@dataclass(frozen=True, slots=True)
class LearnedDraw:
    profile_kwh: tuple[float, ...]  # heat drawn per local hour, kWh
    days: int  # whole days the day's draw was learned from
    shape_days: int  # whole days on its thermostat its hours were learned from (0: as configured)

    @property
    def per_day_kwh(self) -> float:
        return float(sum(self.profile_kwh))


def by_local_hour(
    times_s: Sequence[float] | FloatArray,
    mean: Sequence[float] | FloatArray,
    first: date,
    days: int,
    tz: tzinfo,
    *,
    share: bool = False,
) -> FloatArray:
    """Hourly means (bucket starts in epoch seconds) per local hour of each of ``days`` days
    from ``first``, shape (days, 24): of a power (W), the energy (kWh), a 25-hour day's repeated
    hour added; of a ``share`` (0-1), the share, the repeated hour's the lesser. NaN where
    nothing was recorded (a 23-hour day keeps one hour NaN)."""
    out = np.full((days, HOURS), np.nan)
    for t, value in zip(
        np.asarray(times_s, dtype=np.float64), np.asarray(mean, dtype=np.float64), strict=True
    ):
        if not np.isfinite(value):
            continue
        local = datetime.fromtimestamp(float(t), UTC).astimezone(tz)
        day, hour = (local.date() - first).days, local.hour
        if not 0 <= day < days:
            continue
        before = out[day, hour]
        if share:
            out[day, hour] = value if np.isnan(before) else min(before, value)
        else:
            out[day, hour] = (0.0 if np.isnan(before) else before) + value / 1000.0
    return out


def learned_draw(element_kwh: FloatArray, own: FloatArray, config: WaterHeaterConfig) -> LearnedDraw | None:
    """The draw per local hour from the element's energy per local hour of past days (rows,
    NaN: not recorded) and the share of each hour the tank was on its own thermostat (the same
    shape); None until ``config.draw_learn_min_days`` whole days are known."""
    for name, values in (("element_kwh", element_kwh), ("own", own)):
        if values.ndim != 2 or values.shape[1] != HOURS:
            raise ValueError(f"{name}: expected (days, {HOURS}) values, got {values.shape}")
    if own.shape != element_kwh.shape:
        raise ValueError(f"own: expected {element_kwh.shape} values like element_kwh, got {own.shape}")
    recorded = np.all(np.isfinite(element_kwh), axis=1)
    whole = element_kwh[recorded]
    if whole.shape[0] < config.draw_learn_min_days:
        return None
    kept_c = config.thermostat_c - config.hysteresis_k / 2.0
    loss_kwh = max(config.loss_w_per_k * (kept_c - config.ambient_c) / 1000.0, 0.0)  # an hour's
    total = max(float(whole.mean(axis=0).sum()) - HOURS * loss_kwh, 0.0)
    on_thermostat = element_kwh[recorded & np.all(np.nan_to_num(own, nan=0.0) >= OWN_SHARE, axis=1)]
    if on_thermostat.shape[0] >= config.draw_learn_min_days:
        excess = np.clip(on_thermostat.mean(axis=0) - loss_kwh, 0.0, None)
    else:
        excess = np.asarray(configured_profile(config), dtype=np.float64)
    shape = excess / excess.sum() if excess.sum() > 0 else np.full(HOURS, 1.0 / HOURS)
    profile = np.minimum(total * shape, 50.0)  # the most draw_profile_kwh takes per hour
    shape_days = int(on_thermostat.shape[0]) if on_thermostat.shape[0] >= config.draw_learn_min_days else 0
    return LearnedDraw(tuple(round(float(x), 4) for x in profile), int(whole.shape[0]), shape_days)


def configured_profile(config: WaterHeaterConfig) -> tuple[float, ...]:
    """The configured draw per local hour: ``draw_profile_kwh``, or the day's spread as households do."""
    if config.draw_profile_kwh:
        return config.draw_profile_kwh
    return tuple(config.draw_kwh_per_day * x / sum(DRAW_SHAPE) for x in DRAW_SHAPE)
