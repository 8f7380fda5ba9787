"""Grid voltage statistics over arrays of stored history: the EN 50160 limits, 10-minute means,
events beyond a threshold, weekly quality, the hourly profile and the fit of voltage on export
(:mod:`storage.analytics` reads the history and assembles the report; its docstring says what
each figure means). Pure functions of their arrays: no I/O.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

import numpy as np
import numpy.typing as npt

from storage.records import DataStatus, FloatArray, JsonValue

BoolArray = npt.NDArray[np.bool_]
PHASE_FIELDS = ("grid_v1", "grid_v2", "grid_v3")
TEN_MIN_S = 600
Z_95 = 1.6449  # one-sided 95 % quantile of the normal distribution
MIN_FIT_POINTS = 30
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
STATUS_ORDER = (DataStatus.REAL, DataStatus.PARTIAL, DataStatus.FALLBACK, DataStatus.ERROR)


def worst(statuses: Sequence[DataStatus]) -> DataStatus:
    return max(statuses, key=STATUS_ORDER.index, default=DataStatus.REAL)


@dataclass(frozen=True, slots=True)
class VoltageLimits:
    nominal_v: float = 230.0
    band_pct: float = 10.0  # 95 % of the week's 10-min means within nominal +/- this
    floor_pct: float = 15.0  # and all of them above nominal - this
    trip_over_v: float = 264.5  # the inverter's instantaneous over-voltage trip (1.15 Un)
    trip_under_v: float = 195.5  # and its under-voltage trip (0.85 Un)

    def __post_init__(self) -> None:
        for name in ("nominal_v", "band_pct", "floor_pct", "trip_over_v", "trip_under_v"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"voltage limits: {name} must be > 0, got {value!r}")
        if not self.trip_under_v < self.nominal_v < self.trip_over_v:
            raise ValueError(
                f"voltage limits: trip_under_v {self.trip_under_v!r} < nominal_v {self.nominal_v!r} "
                f"< trip_over_v {self.trip_over_v!r} does not hold"
            )

    @property
    def over_v(self) -> float:
        return self.nominal_v * (1 + self.band_pct / 100)

    @property
    def under_v(self) -> float:
        return self.nominal_v * (1 - self.band_pct / 100)

    @property
    def floor_v(self) -> float:
        return self.nominal_v * (1 - self.floor_pct / 100)


class EventKind(enum.StrEnum):
    OVER_10MIN = "over_10min"
    UNDER_10MIN = "under_10min"
    OVER_TRIP = "over_trip"
    UNDER_TRIP = "under_trip"


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


@dataclass(frozen=True, slots=True)
class VoltageEvent:
    kind: EventKind
    phase: str
    start: datetime
    end: datetime
    peak_v: float

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def severity_v(self, nominal_v: float) -> float:
        return abs(self.peak_v - nominal_v)

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind.value,
            "phase": self.phase,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration_s": self.duration_s,
            "peak_v": rounded(self.peak_v, 2),
        }


@dataclass(frozen=True, slots=True)
class EventContext:
    """What the house did during an event (W): PV, export (-grid_w) and load; export before it."""

    event: VoltageEvent
    pv_w_mean: float | None = None
    pv_w_max: float | None = None
    export_w_mean: float | None = None
    export_w_max: float | None = None
    load_w_mean: float | None = None
    export_w_mean_before: float | None = None

    def to_dict(self) -> dict[str, JsonValue]:
        out = self.event.to_dict()
        for name in (
            "pv_w_mean",
            "pv_w_max",
            "export_w_mean",
            "export_w_max",
            "load_w_mean",
            "export_w_mean_before",
        ):
            out[name] = rounded(getattr(self, name), 1)
        return out


@dataclass(frozen=True, slots=True)
class WeekQuality:
    phase: str
    week_start: date  # local Monday
    intervals: int
    share_in_band: float  # share of 10-min means within nominal +/- band
    share_above_floor: float  # share within nominal + band / - floor
    min_v: float
    max_v: float

    @property
    def compliant(self) -> bool:
        return self.share_in_band >= 0.95 and self.share_above_floor >= 1.0

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "phase": self.phase,
            "week_start": self.week_start.isoformat(),
            "intervals": self.intervals,
            "share_in_band": rounded(self.share_in_band, 5),
            "share_above_floor": rounded(self.share_above_floor, 5),
            "min_v": rounded(self.min_v, 2),
            "max_v": rounded(self.max_v, 2),
            "compliant": self.compliant,
        }


@dataclass(frozen=True, slots=True)
class HourStats:
    phase: str
    hour: int  # local hour of day
    intervals: int
    mean_v: float
    p5_v: float
    p95_v: float

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "phase": self.phase,
            "hour": self.hour,
            "intervals": self.intervals,
            "mean_v": rounded(self.mean_v, 2),
            "p5_v": rounded(self.p5_v, 2),
            "p95_v": rounded(self.p95_v, 2),
        }


@dataclass(frozen=True, slots=True)
class LineFit:
    points: int
    slope: float
    intercept: float
    r: float
    residual_sd: float


class Sums:
    """Running sums for a least-squares line, fed in chunks (x and y shifted for precision)."""

    def __init__(self, x0: float = 0.0, y0: float = 0.0) -> None:
        self.x0, self.y0 = x0, y0
        self.n = 0
        self.sx = self.sy = self.sxx = self.sxy = self.syy = 0.0

    def add(self, x: FloatArray, y: FloatArray) -> None:
        keep = np.isfinite(x) & np.isfinite(y)
        xs, ys = x[keep] - self.x0, y[keep] - self.y0
        self.n += int(xs.size)
        self.sx += float(xs.sum())
        self.sy += float(ys.sum())
        # elementwise sums, not BLAS dot products: a threaded BLAS stalls on a busy machine
        self.sxx += float((xs * xs).sum())
        self.sxy += float((xs * ys).sum())
        self.syy += float((ys * ys).sum())

    def fit(self) -> LineFit | None:
        n = self.n
        if n < MIN_FIT_POINTS:
            return None
        vxx = self.sxx - self.sx**2 / n
        vyy = self.syy - self.sy**2 / n
        vxy = self.sxy - self.sx * self.sy / n
        if vxx <= 1e-12 * max(1.0, self.sxx):
            return None  # the power never varied
        slope = vxy / vxx
        intercept = (self.sy - slope * self.sx) / n + self.y0 - slope * self.x0
        r = vxy / math.sqrt(vxx * vyy) if vyy > 0 else 0.0
        sse = max(0.0, vyy - slope * vxy)
        return LineFit(n, slope, intercept, r, math.sqrt(sse / max(1, n - 2)))


@dataclass(frozen=True, slots=True)
class ExportCorrelation:
    phase: str
    level: LineFit | None  # voltage (V) on export (kW)
    step: LineFit | None  # minute-to-minute changes
    mean_v: float
    max_export_kw: float
    phases_fed: int
    impedance_ohm: float | None
    likely_over_voltage_export_kw: float | None

    def to_dict(self) -> dict[str, JsonValue]:
        level, step = self.level, self.step
        return {
            "phase": self.phase,
            "points": level.points if level else 0,
            "slope_v_per_kw": rounded(level.slope if level else None, 4),
            "v_at_zero_export": rounded(level.intercept if level else None, 2),
            "r": rounded(level.r if level else None, 4),
            "residual_sd_v": rounded(level.residual_sd if level else None, 3),
            "step_points": step.points if step else 0,
            "step_slope_v_per_kw": rounded(step.slope if step else None, 4),
            "step_r": rounded(step.r if step else None, 4),
            "phases_fed": self.phases_fed,
            "impedance_ohm": rounded(self.impedance_ohm, 4),
            "max_export_kw": rounded(self.max_export_kw, 3),
            "likely_over_voltage_export_kw": rounded(self.likely_over_voltage_export_kw, 3),
        }


# --- pure statistics over arrays -----------------------------------------------------------------


def ten_minute_means(
    times: FloatArray, mean: FloatArray, count: FloatArray, width_s: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(interval starts, means, interval widths): count-weighted 10-min means of finer buckets;
    buckets of 10 min or more are kept as they are."""
    keep = np.isfinite(mean) & (count > 0)
    t, v, c = times[keep], mean[keep], count[keep]
    if width_s >= TEN_MIN_S or t.size == 0:
        return t, v, np.full(t.size, float(width_s))
    key = np.floor(t / TEN_MIN_S) * TEN_MIN_S
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    means = np.add.reduceat(v * c, first) / np.add.reduceat(c, first)
    return key[first], means, np.full(first.size, float(TEN_MIN_S))


def runs(times: FloatArray, widths: FloatArray, mask: BoolArray) -> list[tuple[int, int]]:
    """(first, last) indexes of runs of ``mask`` over intervals that follow each other without a gap."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    ends = times[idx] + widths[idx]
    breaks = np.flatnonzero(np.abs(times[idx[1:]] - ends[:-1]) > 1e-6) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [idx.size])) - 1
    return [(int(idx[a]), int(idx[b])) for a, b in zip(starts, stops, strict=True)]


def threshold_events(
    kind: EventKind, phase: str, times: FloatArray, widths: FloatArray, values: FloatArray, threshold: float
) -> list[VoltageEvent]:
    """Runs of intervals whose value is beyond ``threshold`` (above for over-, below for under-events)."""
    over = kind in (EventKind.OVER_10MIN, EventKind.OVER_TRIP)
    mask = values > threshold if over else values < threshold
    out = []
    for a, b in runs(times, widths, mask):
        part = values[a : b + 1]
        out.append(
            VoltageEvent(
                kind,
                phase,
                datetime.fromtimestamp(float(times[a]), UTC),
                datetime.fromtimestamp(float(times[b] + widths[b]), UTC),
                float(part.max() if over else part.min()),
            )
        )
    return out


def local_calendar(times: FloatArray, tz: tzinfo) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(local hour of day, local date ordinal) of each instant.

    The zone's UTC offset is looked up at both ends of each UTC day; only on days where it
    changes, per quarter-hour (offsets change on quarter-hours at most).
    """
    if times.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    utc_day = np.floor(times / 86400.0)
    days, inverse = np.unique(utc_day, return_inverse=True)

    def offset_s(t: float) -> float:
        delta = datetime.fromtimestamp(t, tz).utcoffset()
        return delta.total_seconds() if delta is not None else 0.0

    first = np.array([offset_s(d * 86400.0) for d in days.tolist()])
    last = np.array([offset_s(d * 86400.0 + 86399.0) for d in days.tolist()])
    offsets = first[inverse]
    changing = (first != last)[inverse]
    if changing.any():
        quarters = np.floor(times[changing] / 900.0) * 900.0
        unique, back = np.unique(quarters, return_inverse=True)
        offsets[changing] = np.array([offset_s(q) for q in unique.tolist()])[back]
    local = times + offsets
    hours = ((local // 3600) % 24).astype(np.int64)
    ordinals = (local // 86400).astype(np.int64) + EPOCH_ORDINAL
    return hours, ordinals


def weekly_quality(
    phase: str, times: FloatArray, means: FloatArray, tz: tzinfo, limits: VoltageLimits
) -> list[WeekQuality]:
    if times.size == 0:
        return []
    _, days = local_calendar(times, tz)
    mondays = days - (days - 1) % 7  # day 1 (0001-01-01) was a Monday
    out = []
    for monday in np.unique(mondays):
        v = means[mondays == monday]
        in_band = (v >= limits.under_v) & (v <= limits.over_v)
        above_floor = (v >= limits.floor_v) & (v <= limits.over_v)
        out.append(
            WeekQuality(
                phase,
                date.fromordinal(int(monday)),
                int(v.size),
                float(in_band.mean()),
                float(above_floor.mean()),
                float(v.min()),
                float(v.max()),
            )
        )
    return out


def hourly_profile(phase: str, times: FloatArray, means: FloatArray, tz: tzinfo) -> list[HourStats]:
    if times.size == 0:
        return []
    hours, _ = local_calendar(times, tz)
    out = []
    for hour in range(24):
        v = means[hours == hour]
        if v.size:
            p5, p95 = np.percentile(v, [5, 95])
            out.append(HourStats(phase, hour, int(v.size), float(v.mean()), float(p5), float(p95)))
    return out


def correlation(
    phase: str,
    level: Sums,
    step: Sums,
    mean_v: float,
    max_export_kw: float,
    phases_fed: int,
    limits: VoltageLimits,
) -> ExportCorrelation:
    lf, sf = level.fit(), step.fit()
    basis = sf if sf is not None and sf.slope > 0 else lf
    impedance = basis.slope / 1000.0 * mean_v * phases_fed if basis and basis.slope > 0 else None
    likely = None
    if lf is not None and lf.slope > 0:
        likely = max(0.0, (limits.over_v - lf.intercept - Z_95 * lf.residual_sd) / lf.slope)
    return ExportCorrelation(phase, lf, sf, mean_v, max_export_kw, phases_fed, impedance, likely)
