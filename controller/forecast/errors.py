"""How far the net load (load - PV) may depart from its forecast: quantiles of past errors.

Errors come from hindcasts: :func:`controller.forecast.history.forecast_pv` and ``forecast_load`` run
at every past interval on the history before it, against what was then measured. They are
grouped by lead time (bands, :data:`LEAD_BANDS_H`) and hour of the target's day, and each group
gives K quantiles at the mid-points of K equal-probability bins: K equally likely departures
per slot, the input of :mod:`controller.planner.recourse`. A group with fewer than
:data:`MIN_SAMPLES` errors gives no departure (zeros). How errors persist is counted too: for
each hour, how often an error in one bin is followed at the next lead of the same forecast by
one in each bin (the transitions between the recourse planner's cases).

Like :mod:`controller.forecast.history`, series are uniform and start at a day's start (interval ``k``
is interval ``k % steps_per_day`` of its day); pure numpy, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.forecast.history import forecast_load, forecast_pv

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

LEAD_BANDS_H = (1.0, 2.0, 3.0, 6.0, 12.0, 24.0)  # upper edges of the lead-time bands; the last is open
HOURS = 24
QUANTILES = 7
ERROR_DAYS = 28  # days of hindcasts the quantiles come from
MIN_SAMPLES = 5
EXACT_PARTS = frozenset({"pv", "load"})  # the parts a hindcast or a backtest may take as measured


@dataclass(frozen=True)
class DayErrors:
    """The hindcast errors of the forecasts issued during one day: (issues, leads) W, NaN where
    the target was not yet measured or beyond the series."""

    day: int
    error_w: FloatArray


def hindcast_day(
    pv_w: FloatArray,
    load_w: FloatArray,
    steps_per_day: int,
    day: int,
    n_ahead: int,
    measured: int,
    exact: frozenset[str] = frozenset(),
) -> DayErrors:
    """Errors (measured minus forecast net load) of the forecasts issued at each interval of
    ``day`` (an index into the series), for ``n_ahead`` intervals ahead, against the first
    ``measured`` intervals of the series. ``exact``: parts (``pv``, ``load``) forecast as they
    were measured (no error), to tell apart what each part's forecast costs."""
    if day < 1:
        raise ValueError(f"day {day}: the forecasts need a day of history before it")
    if not exact <= EXACT_PARTS:
        raise ValueError(f"exact: parts must be among {sorted(EXACT_PARTS)}, got {sorted(exact)}")
    net = load_w[:measured] - pv_w[:measured]
    first = day * steps_per_day
    errors = np.full((steps_per_day, n_ahead), np.nan)
    for k in range(steps_per_day):
        issue = first + k
        known = min(n_ahead, measured - issue)
        if known <= 0:
            break
        ahead = slice(issue, issue + known)
        load = load_w[ahead] if "load" in exact else forecast_load(load_w[:issue], known, steps_per_day)
        pv = pv_w[ahead] if "pv" in exact else forecast_pv(pv_w[:issue], known, steps_per_day)
        errors[k, :known] = net[ahead] - (load - pv)
    return DayErrors(day, errors)


def lead_band(lead_h: npt.ArrayLike) -> IntArray:
    bands: IntArray = np.searchsorted(np.array(LEAD_BANDS_H), lead_h, side="right")
    return bands


@dataclass(frozen=True)
class ErrorTable:
    """K quantiles of the net-load error (W) per lead band and hour of the day: (bands, 24, K),
    and how errors persist: the chance that a slot's error falls in each of the K equally likely
    bins given the bin of the slot before's, by the slot's hour: (24, K, K) (rows sum to 1)."""

    quantiles_w: FloatArray
    transitions: FloatArray
    steps_per_day: int  # of the hindcast series the transitions were counted on

    @classmethod
    def from_days(cls, days: Iterable[DayErrors], steps_per_day: int, k: int = QUANTILES) -> ErrorTable:
        """The table from hindcast days of one series (each issue's leads count from its interval;
        the transitions from the errors of consecutive leads of one issue, one count added to
        each so that no chance is zero)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        step_h = 24.0 / steps_per_day
        errors, groups, hours = [], [], []
        for d in days:
            issues, leads = d.error_w.shape
            target = d.day * steps_per_day + np.arange(issues)[:, None] + np.arange(leads)[None, :]
            hour = (target % steps_per_day) * HOURS // steps_per_day
            errors.append(d.error_w)
            groups.append(lead_band(np.arange(leads) * step_h)[None, :] * HOURS + hour)
            hours.append(hour)
        bands = len(LEAD_BANDS_H) + 1
        table = np.zeros((bands * HOURS, k))
        counts = np.ones((HOURS, k, k))
        if errors:
            edges = np.zeros((bands * HOURS, k - 1))
            _quantiles(errors, groups, table, edges)
            for error, group, hour in zip(errors, groups, hours, strict=True):
                case = (error[:, :, None] > edges[group]).sum(axis=2)
                pair = np.isfinite(error[:, :-1]) & np.isfinite(error[:, 1:])
                np.add.at(counts, (hour[:, 1:][pair], case[:, :-1][pair], case[:, 1:][pair]), 1.0)
        return cls(table.reshape(bands, HOURS, k), counts / counts.sum(axis=2, keepdims=True), steps_per_day)

    def spread_w(self, lead_h: npt.ArrayLike, hour: npt.ArrayLike) -> FloatArray:
        """The K departures of each slot, by its lead time (h) and the hour of its day."""
        spread: FloatArray = self.quantiles_w[lead_band(lead_h), np.asarray(hour) % HOURS]
        return spread

    def transitions_for(self, hour: npt.ArrayLike, before_h: npt.ArrayLike | None = None) -> FloatArray:
        """Each slot's (K, K) chances of its error's bin given the slot before's, by its hour.
        ``before_h``: how long the slot before is (h); one longer than the hindcast series' step
        is as many steps back (None: one step)."""
        hours = np.asarray(hour) % HOURS
        chances: FloatArray = self.transitions[hours]
        if before_h is not None:
            steps = np.round(np.broadcast_to(np.asarray(before_h), hours.shape) * self.steps_per_day / 24.0)
            for i, n in enumerate(steps.tolist()):
                if n > 1:
                    chances[i] = np.linalg.matrix_power(chances[i], int(n))
        return chances


def _quantiles(
    errors: list[FloatArray], groups: list[IntArray], table: FloatArray, edges: FloatArray
) -> None:
    """Fill each group's row of ``table`` with its K quantiles (the mid-points of K equally likely
    bins) and of ``edges`` with the K - 1 bins' bounds; groups with too few errors stay zero."""
    error = np.concatenate([e.ravel() for e in errors])
    group = np.concatenate([g.ravel() for g in groups])
    known = np.isfinite(error)
    error, group = error[known], group[known]
    order = np.lexsort((error, group))  # by group, each group's errors in order
    error, group = error[order], group[order]
    bounds = np.searchsorted(group, np.arange(table.shape[0] + 1))
    k = table.shape[1]
    enough = np.flatnonzero(np.diff(bounds) >= MIN_SAMPLES)
    first, count = bounds[enough], np.diff(bounds)[enough]
    table[enough] = _sorted_quantiles(error, first, count, (np.arange(k) + 0.5) / k)
    edges[enough] = _sorted_quantiles(error, first, count, np.arange(1, k) / k)


def _sorted_quantiles(values: FloatArray, first: IntArray, count: IntArray, levels: FloatArray) -> FloatArray:
    """``np.quantile`` (its default, linear method, to the last bit) of each run
    ``values[first:first + count]`` of sorted values, at each of ``levels``: (runs, levels)."""
    at = (count[:, None] - 1) * levels[None, :]
    below = np.floor(at)
    last = at >= (count - 1)[:, None]
    index = np.where(last, count[:, None] - 1, below).astype(np.intp) + first[:, None]
    low = values[index]
    high = values[np.where(last, index, index + 1)]
    weight = at - np.where(last, -1.0, below)  # as numpy weighs a level at the last value
    step = high - low
    out: FloatArray = low + step * weight
    np.subtract(high, step * (1 - weight), out=out, where=weight >= 0.5)
    return out


def settled_days(size: int, steps_per_day: int, n_ahead: int) -> range:
    """The issue days (indices into a series of ``size`` values) whose forecasts ``n_ahead``
    intervals ahead all have their targets measured, the last ERROR_DAYS of them."""
    last = (size - n_ahead) // steps_per_day - 1
    return range(max(1, last - ERROR_DAYS + 1), last + 1)


def history_spread(pv_w: FloatArray, load_w: FloatArray, steps_per_day: int, n_ahead: int) -> ErrorTable:
    """The table from the hindcasts of a measured history (its last value the latest)."""
    size = min(pv_w.size, load_w.size)
    days = settled_days(size, steps_per_day, n_ahead)
    return ErrorTable.from_days(
        (hindcast_day(pv_w, load_w, steps_per_day, d, n_ahead, size) for d in days), steps_per_day
    )
