"""PV and load forecasts from the site's own past (pure numpy, no I/O).

Both work on a uniform series of past values (``history``, the last element the most recent
interval) and forecast the next ``n_ahead`` intervals. They use only what ``history``
contains, so a backtest that passes ``series[:i]`` cannot peek at the future.

- Load: a blend of the same time yesterday, the same time a week ago and the mean daily
  profile of recent days, pulled towards the latest reading for the first hours.
- PV: recent days' output at the same time of day, normalised by the clear-sky envelope
  (the best of the last days at that time) to a clearness factor; the forecast is the
  envelope times a clearness blended from yesterday, the recent average and, for the rest of
  today, how today has gone so far.

A weather-driven forecast can replace the clearness estimate without changing the callers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

PROFILE_DAYS = 7  # days averaged into the daily load profile
ENVELOPE_DAYS = 14  # days whose best output at each time of day forms the clear-sky envelope
CLEARNESS_DAYS = 4  # days averaged into the recent clearness
PERSISTENCE_HOURS = 1.5  # how fast the latest load reading fades out of the forecast
LOAD_WEIGHTS = (0.3, 0.2, 0.5)  # yesterday, a week ago, the recent profile


def _same_time(history: FloatArray, n_ahead: int, days_back: int, steps_per_day: int) -> FloatArray:
    """Each future interval's value ``days_back`` days earlier, repeating days as needed."""
    n = history.size
    ahead = np.arange(n_ahead)
    lag = days_back * steps_per_day
    # Interval n + a looks back by enough whole periods of ``lag`` to land in the past.
    periods = ahead // lag + 1
    return history[n + ahead - periods * lag]


def _daily_mean(history: FloatArray, n_ahead: int, days: int, steps_per_day: int) -> FloatArray:
    total = np.zeros(n_ahead)
    for d in range(1, days + 1):
        total += _same_time(history, n_ahead, d, steps_per_day)
    return total / days


def forecast_load(history_w: FloatArray, n_ahead: int, steps_per_day: int) -> FloatArray:
    """Household load (W) for the next ``n_ahead`` intervals from at least one day of history."""
    history = np.asarray(history_w, dtype=np.float64)
    _check(history, n_ahead, steps_per_day)
    days = history.size // steps_per_day
    yesterday = _same_time(history, n_ahead, 1, steps_per_day)
    profile = _daily_mean(history, n_ahead, min(days, PROFILE_DAYS), steps_per_day)
    week = _same_time(history, n_ahead, 7, steps_per_day) if days >= 7 else profile
    w_day, w_week, w_profile = LOAD_WEIGHTS
    blend = w_day * yesterday + w_week * week + w_profile * profile
    hours = (np.arange(n_ahead) + 1) * 24.0 / steps_per_day
    latest = np.exp(-hours / PERSISTENCE_HOURS)
    result: FloatArray = np.maximum(latest * history[-1] + (1.0 - latest) * blend, 0.0)
    return result


def forecast_pv(history_w: FloatArray, n_ahead: int, steps_per_day: int) -> FloatArray:
    """PV output (W) for the next ``n_ahead`` intervals. The history must start at the start of
    a day (its interval ``k`` is interval ``k % steps_per_day`` of its day)."""
    history = np.asarray(history_w, dtype=np.float64)
    _check(history, n_ahead, steps_per_day)
    done_today = history.size % steps_per_day
    days = min((history.size - done_today) // steps_per_day, ENVELOPE_DAYS)
    end = history.size - done_today
    block = history[end - days * steps_per_day : end].reshape(days, steps_per_day)  # full days, oldest first
    envelope = block.max(axis=0)
    # Widen by a neighbour step so the envelope tolerates a slightly shifted sunrise or sunset.
    envelope = np.maximum(envelope, 0.9 * np.maximum(np.roll(envelope, 1), np.roll(envelope, -1)))
    best = float(envelope.sum())
    if best <= 0:
        return np.zeros(n_ahead)
    clearness_by_day = np.minimum(block.sum(axis=1) / best, 1.0)
    recent = float(clearness_by_day[-CLEARNESS_DAYS:].mean())
    clearness = np.full(
        n_ahead, 0.5 * recent + 0.3 * float(clearness_by_day[-1]) + 0.2 * float(clearness_by_day.mean())
    )
    # The rest of today follows how today has gone so far, relative to the envelope.
    expected = float(envelope[:done_today].sum())
    if done_today and expected > 0.05 * best:
        today = min(float(history[end:].sum()) / expected, 1.2)
        left = min(n_ahead, steps_per_day - done_today)
        clearness[:left] = 0.6 * today + 0.4 * clearness[:left]
    time_of_day = (done_today + np.arange(n_ahead)) % steps_per_day
    result: FloatArray = np.clip(envelope[time_of_day] * clearness, 0.0, None)
    return result


def _check(history: FloatArray, n_ahead: int, steps_per_day: int) -> None:
    if steps_per_day <= 0:
        raise ValueError(f"steps_per_day must be > 0, got {steps_per_day!r}")
    if n_ahead < 0:
        raise ValueError(f"n_ahead must be >= 0, got {n_ahead!r}")
    if history.ndim != 1 or history.size < steps_per_day:
        raise ValueError(f"history: need at least one day ({steps_per_day} values), got {history.size}")
    if not np.all(np.isfinite(history)):
        raise ValueError("history: contains values that are not finite")
