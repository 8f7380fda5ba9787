"""Data quality per day and field, judged from the 1-minute rollups.

- completeness: samples received / samples expected at the nominal sample interval;
- gaps: runs of at least ``gap_minutes`` minutes without a sample (count and the longest);
- out of range: minutes whose min or max leaves the field's plausible range;
- stuck: minutes in runs of at least ``stuck_minutes`` with one identical non-zero value
  (a frozen register; a real measurement jitters);
- counter resets: a lifetime counter (``*_kwh``) that went down.

Working from rollups means the judgement survives restarts and covers imported history too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from storage.rollups import Buckets

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class QualityRule:
    pattern: str  # regular expression over the field name
    low: float
    high: float
    stuck_minutes: int | None = None  # None: the field may legitimately hold one value for long
    counter: bool = False


QUALITY_RULES: tuple[QualityRule, ...] = (
    QualityRule(r"soc_pct", 0.0, 100.0),
    QualityRule(r"pv_w", -100.0, 100_000.0, stuck_minutes=30),
    QualityRule(r"load_w", -100.0, 100_000.0, stuck_minutes=30),
    QualityRule(r"grid_w", -100_000.0, 100_000.0, stuck_minutes=30),
    QualityRule(r"battery_w", -50_000.0, 50_000.0),
    QualityRule(r"grid_v\d", 180.0, 280.0, stuck_minutes=30),
    QualityRule(r"grid_hz", 47.0, 53.0, stuck_minutes=30),
    QualityRule(r"temp_.+_c", -40.0, 100.0),
    QualityRule(r".+_kwh", 0.0, 1e8, counter=True),
)
NO_RULE = QualityRule(".*", -math.inf, math.inf)
COUNTER_TOLERANCE_KWH = 0.05


def rule_for(field: str) -> QualityRule:
    return next((r for r in QUALITY_RULES if re.fullmatch(r.pattern, field)), NO_RULE)


@dataclass(frozen=True, slots=True)
class FieldQuality:
    field: str
    day: date
    samples: int
    expected: int
    completeness: float
    gaps: int
    longest_gap_s: float
    out_of_range_minutes: int
    stuck_minutes: int
    counter_resets: int

    def as_dict(self) -> dict[str, object]:
        return {
            "field": self.field,
            "day": self.day.isoformat(),
            "samples": self.samples,
            "expected": self.expected,
            "completeness": round(self.completeness, 4),
            "gaps": self.gaps,
            "longest_gap_s": self.longest_gap_s,
            "out_of_range_minutes": self.out_of_range_minutes,
            "stuck_minutes": self.stuck_minutes,
            "counter_resets": self.counter_resets,
        }


def _runs(mask: BoolArray) -> list[tuple[int, int]]:
    """(start index, length) of each run of True."""
    if mask.size == 0:
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist(), strict=True))


def assess(
    field: str,
    day: date,
    minutes: Buckets,
    start_s: float,
    end_s: float,
    *,
    sample_interval_s: float,
    gap_minutes: int = 2,
) -> FieldQuality:
    """Quality of one field over [start_s, end_s) (end clamped to now by the caller) from 1-min buckets."""
    rule = rule_for(field)
    n_minutes = max(0, math.ceil((end_s - start_s) / 60.0))
    index = ((minutes.start - start_s) // 60).astype(np.int64)
    keep = (index >= 0) & (index < n_minutes)
    index = index[keep]
    present = np.zeros(n_minutes, dtype=bool)
    present[index] = True
    samples = int(minutes.count[keep].sum())
    expected = max(0, round((end_s - start_s) / sample_interval_s))
    gap_runs = [length for _, length in _runs(~present) if length >= gap_minutes]

    low, high, last = minutes.low[keep], minutes.high[keep], minutes.last[keep]
    out_of_range = int(np.count_nonzero((low < rule.low) | (high > rule.high)))

    stuck = 0
    if rule.stuck_minutes is not None and index.size:
        flat = np.full(n_minutes, np.nan)
        constant = (low == high) & (minutes.count[keep] >= 2) & (low != 0.0)
        flat[index[constant]] = low[constant]
        for first, length in _runs(~np.isnan(flat)):
            segment = flat[first : first + length]
            change = np.flatnonzero(segment[1:] != segment[:-1]) + 1
            for piece in np.split(segment, change):
                if piece.size >= rule.stuck_minutes:
                    stuck += int(piece.size)

    resets = 0
    if rule.counter and index.size > 1:
        resets = int(np.count_nonzero(low[1:] < last[:-1] - COUNTER_TOLERANCE_KWH))

    return FieldQuality(
        field=field,
        day=day,
        samples=samples,
        expected=expected,
        completeness=min(1.0, samples / expected) if expected else 1.0,
        gaps=len(gap_runs),
        longest_gap_s=float(max(gap_runs, default=0) * 60),
        out_of_range_minutes=out_of_range,
        stuck_minutes=stuck,
        counter_resets=resets,
    )
