"""PV and load forecasts from the site's own past (pure numpy, no I/O).

Both take a uniform series of past values (``history``: interval ``k`` of it is interval
``k % steps_per_day`` of its day, the last element the most recent interval) and forecast the
next ``n_ahead`` intervals. They use only what ``history`` holds, so a backtest that passes
``series[:i]`` cannot peek at the future.

- Load: the median of the same time of day over the recent days (robust to one-off events),
  shifted by part of how far the last day ran above or below what that median gave for it (a
  heated house's level follows the weather for days), pulled towards the latest reading for the
  first hours.
- PV: a blend of yesterday, the mean of the recent days and the mean of the last three weeks
  at the same time of day, so that after a grey or a sunny spell tomorrow can lean back
  towards the site's normal. The weights are those that would have forecast the energy of the
  site's own last days best (least squares over a grid of weights summing to one, each day
  from the days before it); until there are enough days, a fixed blend of yesterday and the
  recent days. The rest of today is scaled by how today has gone so far against that same
  forecast. The next hours are pulled towards a nowcast: the last hour's output against the
  recent days' best at those times (how clear the sky is now), times that best for the hours
  ahead, fading out.

A weather-driven PV forecast can replace the day-ahead part without changing the callers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LOAD_DAYS = 10  # days whose median at each time of day is the load profile
PERSISTENCE_HOURS = 1.5  # how fast the latest load reading fades out of the forecast
LOAD_SHIFT_HOURS = 24.0  # the latest hours whose departures from the profile shift the forecast
LOAD_SHIFT_WEIGHT = 0.5  # share of their median departure added to the profile
LOAD_SHIFT_MIN_DAYS = 3  # days of profile each of those hours needs before it
PV_DAYS = 4  # days averaged into the PV profile
PV_YESTERDAY_WEIGHT = 0.4  # weight of yesterday against the recent days' mean
PV_ANCHOR_DAYS = 21  # days averaged into the long-run profile the forecast leans back towards
PV_FIT_DAYS = 7  # the last days on which the blend weights are fitted (with the anchor's days:
# the daemon's default history of 28 days)
PV_FIT_MIN_DAYS = 5  # fewer fitted days than this: the fixed blend
PV_FIT_MIN_PAST = 7  # days of history a fitted day needs before it
PV_WEIGHT_STEP = 0.05  # grid of the fitted weights
TODAY_WEIGHT = 0.6  # how much of today's so-far ratio applies to the rest of today
TODAY_RATIO_LIMITS = (0.2, 2.0)
NOWCAST_WINDOW_HOURS = 1.0  # measured output this far back sets how clear the sky is now
NOWCAST_FADE_HOURS = 2.0  # how fast that fades into the day's forecast
NOWCAST_DAYS = 10  # days whose best output at each time of day stands for a clear sky
NOWCAST_RATIO_LIMIT = 1.2


def _same_time(history: FloatArray, n_ahead: int, days_back: int, steps_per_day: int) -> FloatArray:
    """Each future interval's value ``days_back`` days earlier (repeating that day further on)."""
    ahead = np.arange(n_ahead)
    lag = days_back * steps_per_day
    values: FloatArray = history[history.size + ahead - lag * (ahead // lag + 1)]
    return values


def _days_back(history: FloatArray, steps_per_day: int, most: int) -> int:
    return max(1, min(most, history.size // steps_per_day))


def forecast_load(
    history_w: FloatArray, n_ahead: int, steps_per_day: int, *, shift_weight: float = LOAD_SHIFT_WEIGHT
) -> FloatArray:
    """Household load (W) for the next ``n_ahead`` intervals from at least one day of history
    (``shift_weight``: the share of the last day's departure added, 0 for the median alone)."""
    history = _checked(history_w, n_ahead, steps_per_day)
    days = _days_back(history, steps_per_day, LOAD_DAYS)
    profile = np.median([_same_time(history, n_ahead, d, steps_per_day) for d in range(1, days + 1)], axis=0)
    if shift_weight:
        profile = np.maximum(profile + shift_weight * _load_departure(history, steps_per_day, days), 0.0)
    hours = (np.arange(n_ahead) + 1) * 24.0 / steps_per_day
    latest = np.exp(-hours / PERSISTENCE_HOURS)
    result: FloatArray = np.maximum(latest * history[-1] + (1.0 - latest) * profile, 0.0)
    return result


def _load_departure(history: FloatArray, steps_per_day: int, days: int) -> float:
    """The median over the last :data:`LOAD_SHIFT_HOURS` of the measured load less what the
    profile (the median of the ``days`` days before each interval) gave for it; the median, so
    that a car charged or an oven used yesterday does not shift tomorrow."""
    span = round(LOAD_SHIFT_HOURS * steps_per_day / 24.0)
    before = min(days, (history.size - span) // steps_per_day)
    if before < LOAD_SHIFT_MIN_DAYS:
        return 0.0
    latest = history.size - span + np.arange(span)
    profile = np.median(history[latest[None, :] - steps_per_day * np.arange(1, before + 1)[:, None]], axis=0)
    return float(np.median(history[latest] - profile))


def _simplex(step: float) -> FloatArray:
    """Every (yesterday, recent, anchor) weight triple on a grid of ``step`` summing to one."""
    n = round(1.0 / step)
    triples = [(a, b, n - a - b) for a in range(n + 1) for b in range(n + 1 - a)]
    grid: FloatArray = np.array(triples, dtype=np.float64) / n
    return grid


WEIGHT_GRID = _simplex(PV_WEIGHT_STEP)
FIXED_WEIGHTS = np.array([PV_YESTERDAY_WEIGHT, 1.0 - PV_YESTERDAY_WEIGHT, 0.0])


def _pv_weights(history: FloatArray, steps_per_day: int) -> FloatArray:
    """The blend weights whose forecasts of the last complete days' energy, each from the days
    before it, come nearest what came (the planner cares most about a day's energy)."""
    complete = history.size // steps_per_day
    days = min(complete, PV_FIT_DAYS + PV_ANCHOR_DAYS)
    end = complete * steps_per_day
    energy = history[end - days * steps_per_day : end].reshape(days, steps_per_day).sum(axis=1)
    targets = np.arange(max(PV_FIT_MIN_PAST, days - PV_FIT_DAYS), days)
    if targets.size < PV_FIT_MIN_DAYS:
        return FIXED_WEIGHTS
    sums = np.concatenate([[0.0], np.cumsum(energy)])

    def mean_before(span: int) -> FloatArray:
        first = np.maximum(targets - span, 0)
        means: FloatArray = (sums[targets] - sums[first]) / (targets - first)
        return means

    parts = np.stack([energy[targets - 1], mean_before(PV_DAYS), mean_before(PV_ANCHOR_DAYS)])
    errors = ((WEIGHT_GRID @ parts - energy[targets]) ** 2).sum(axis=1)
    best: FloatArray = WEIGHT_GRID[int(np.argmin(errors))]
    return best


def _pv_profile(history: FloatArray, n_ahead: int, steps_per_day: int, weights: FloatArray) -> FloatArray:
    w_yesterday, w_recent, w_anchor = weights
    days = _days_back(history, steps_per_day, PV_ANCHOR_DAYS)
    ahead = np.arange(n_ahead)
    lags = steps_per_day * np.arange(1, days + 1)[:, None]
    back = history[history.size + ahead - lags * (ahead // lags + 1)]  # rows: _same_time, 1.. days back
    recent = back[:PV_DAYS].mean(axis=0)
    profile: FloatArray = w_yesterday * back[0] + w_recent * recent
    if w_anchor:
        profile += w_anchor * back.mean(axis=0)
    return profile


def forecast_pv(history_w: FloatArray, n_ahead: int, steps_per_day: int) -> FloatArray:
    """PV output (W) for the next ``n_ahead`` intervals from at least one day of history."""
    history = _checked(history_w, n_ahead, steps_per_day)
    weights = _pv_weights(history, steps_per_day)  # from complete days: the same at midnight
    forecast = np.maximum(_pv_profile(history, n_ahead, steps_per_day, weights), 0.0)
    done_today = history.size % steps_per_day
    if done_today and history.size - done_today >= steps_per_day:
        # Today so far against what the same method, run at midnight, expected for those hours.
        expected = _pv_profile(history[: history.size - done_today], done_today, steps_per_day, weights).sum()
        if expected > 0.02 * max(float(forecast.max()), 1.0) * done_today:
            ratio = float(np.clip(history[-done_today:].sum() / expected, *TODAY_RATIO_LIMITS))
            left = min(n_ahead, steps_per_day - done_today)
            forecast[:left] *= TODAY_WEIGHT * ratio + (1.0 - TODAY_WEIGHT)
    return _nowcast(history, forecast, steps_per_day)


def _nowcast(history: FloatArray, forecast: FloatArray, steps_per_day: int) -> FloatArray:
    """``forecast`` with the rest of today's first hours pulled towards the clear-sky-index
    persistence: sky persists over an hour or two far better than the day's average does."""
    done_today = history.size % steps_per_day
    window = max(1, round(NOWCAST_WINDOW_HOURS * steps_per_day / 24.0))
    days = min(NOWCAST_DAYS, history.size // steps_per_day)
    left = min(forecast.size, steps_per_day - done_today)
    if done_today < window or left == 0:  # _checked: at least one day of history, so days >= 1
        return forecast
    # the same time of day on each of the last days: rows are days, columns the intervals from
    # the start of the window to the end of today
    columns = history.size - window + np.arange(window + left)
    best = history[columns[None, :] - steps_per_day * np.arange(1, days + 1)[:, None]].max(axis=0)
    best_recent = float(best[:window].sum())
    if best_recent <= 0.05 * window * max(float(best.max()), 1.0):
        return forecast  # too little sun in the window to say anything (night, dawn)
    clear_index = min(float(history[-window:].sum()) / best_recent, NOWCAST_RATIO_LIMIT)
    hours_ahead = np.arange(left) * 24.0 / steps_per_day
    weight = np.exp(-hours_ahead / NOWCAST_FADE_HOURS)
    result = forecast.copy()
    result[:left] = weight * clear_index * best[window:] + (1.0 - weight) * forecast[:left]
    return result


def _checked(history_w: FloatArray, n_ahead: int, steps_per_day: int) -> FloatArray:
    history = np.asarray(history_w, dtype=np.float64)
    if steps_per_day <= 0:
        raise ValueError(f"steps_per_day must be > 0, got {steps_per_day!r}")
    if n_ahead < 0:
        raise ValueError(f"n_ahead must be >= 0, got {n_ahead!r}")
    if history.ndim != 1 or history.size < steps_per_day:
        raise ValueError(f"history: need at least one day ({steps_per_day} values), got {history.size}")
    if not np.all(np.isfinite(history)):
        raise ValueError("history: contains values that are not finite")
    return history
