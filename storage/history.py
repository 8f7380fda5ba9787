"""Assembling a history read: the auto resolution table, one time axis, completeness, status and age."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from storage.records import DataResult, DataStatus, FieldHistory, FloatArray, History, Resolution, series_name
from storage.rollups import Buckets, aggregate, field_history, is_power_field, raw_field_history
from storage.series import SeriesKey

# The resolution "auto" picks for a span: raw for hours, 1 min up to a few days, 15 min up to months.
AUTO_RESOLUTION: tuple[tuple[float, Resolution], ...] = (
    (6 * 3600.0, Resolution.RAW),
    (3 * 86400.0, Resolution.MIN1),
    (93 * 86400.0, Resolution.MIN15),
    (math.inf, Resolution.HOUR1),
)
COMPLETE = 0.99  # completeness at or above this is REAL, below PARTIAL


def choose_resolution(span_s: float) -> Resolution:
    return next(res for limit, res in AUTO_RESOLUTION if span_s <= limit)


@dataclass(frozen=True, slots=True)
class Shape:
    """What was asked and what "complete" means for it."""

    start: datetime
    end: datetime
    resolution: Resolution
    now_s: float
    sample_interval_s: float
    max_gap_s: float


def assemble(
    keys: Sequence[SeriesKey],
    sampled: Sequence[SeriesKey],
    per_field: Mapping[SeriesKey, Buckets | tuple[FloatArray, FloatArray]],
    shape: Shape,
    source: str,
    notes: Sequence[str],
) -> DataResult[History]:
    """One ``History`` on the union of all time axes, with completeness, status and age."""
    start, end, res, now_s = shape.start, shape.end, shape.resolution, shape.now_s
    axes = [v.start.astype(np.float64) if isinstance(v, Buckets) else v[0] for v in per_field.values()]
    times = np.unique(np.concatenate(axes)) if axes else np.empty(0)
    fields: dict[str, FieldHistory] = {}
    newest: float | None = None
    for key in keys:
        value = per_field.get(key)
        name = series_name(*key)
        if value is None:
            fields[name] = field_history(
                times, aggregate(np.empty(0), np.empty(0), 60, energy=False, max_gap_s=0)
            )
        elif isinstance(value, Buckets):
            fields[name] = field_history(times, value)
            if key in sampled and len(value):
                newest = max(newest or -math.inf, float(value.last_t.max()))
        else:
            fields[name] = raw_field_history(
                times, value[0], value[1], energy=is_power_field(key[1]), max_gap_s=shape.max_gap_s
            )
            finite = value[0][np.isfinite(value[1])]
            if key in sampled and finite.size:
                newest = max(newest or -math.inf, float(finite.max()))
    s0, s1 = start.timestamp(), min(end.timestamp(), now_s)
    if res is Resolution.RAW:
        expected = max(0, math.floor((s1 - s0) / shape.sample_interval_s))
    else:
        # buckets that overlap [s0, s1) by at least one sample interval
        lo = math.floor(s0 / res.seconds) * res.seconds
        span = s1 - shape.sample_interval_s - lo
        expected = math.floor(span / res.seconds) + 1 if span >= 0 else 0
    present = min(
        (int(np.count_nonzero(fields[series_name(*k)].count > 0)) for k in sampled), default=expected
    )
    completeness = min(1.0, present / expected) if expected else 1.0
    history = History(res, start, end, times, fields, expected, completeness)
    if notes:
        status = DataStatus.FALLBACK
    elif completeness >= COMPLETE:
        status = DataStatus.REAL
    else:
        status = DataStatus.PARTIAL
    message = "; ".join([*notes, f"{res.value}, completeness {completeness:.1%}"])
    age = None if newest is None else max(0.0, now_s - newest)
    return DataResult(history, status, source, age_s=age, message=message)
