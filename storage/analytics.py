"""Grid voltage quality from stored history: statistics only, no physics model.

EN 50160 judges a low-voltage supply by 10-minute means of the RMS voltage: in every week 95 %
of them within Un +/- 10 % (207..253 V for 230 V) and all of them within Un +10 % / -15 %. Here
a 10-min mean is the sample-weighted mean (mean * count) of the 1-min rollups in each clock-aligned
10 minutes. Where the 1-min rollups have expired the data manager answers with 15-min rollups and
their means stand in (status FALLBACK, and the message says so).

Events per phase, each with start, duration and peak (the extreme value within it):

- ``over_10min`` / ``under_10min``: consecutive 10-min means above 253 V / below 207 V;
- ``over_trip`` / ``under_trip``: consecutive minutes whose highest / lowest sample crossed the
  inverter's instantaneous trip setting.

Export against voltage, per phase, from 1-min means: least squares of the voltage on the export
power (``-grid_w`` in kW, negative while importing) gives the slope (V/kW), the voltage at zero
export and r. The slope of minute-to-minute changes is also fitted: slow changes of the
neighbourhood's voltage cancel in it, so it is the better basis for the impedance estimate
``R = slope * V * phases_fed`` (ohm; unity power factor, balanced when three phases are fed). The
export at which over-voltage becomes likely is where the level fit plus 1.645 residual standard
deviations (95 % one-sided) reaches 253 V.

History is read a week at a time, so a year costs a week's memory. Reads carry the data manager's
status; the report's status is the worst of them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from storage import StorageError
from storage.datamanager import DataManager
from storage.records import DataStatus, FloatArray, History, JsonValue, Resolution

BoolArray = npt.NDArray[np.bool_]
PHASE_FIELDS = ("grid_v1", "grid_v2", "grid_v3")
CONTEXT_FIELDS = ("pv_w", "grid_w", "load_w")
TEN_MIN_S = 600
CHUNK = timedelta(days=7)
CONTEXT_BEFORE = timedelta(minutes=30)
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


def _num(value: float | None, digits: int = 3) -> float | None:
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
            "peak_v": _num(self.peak_v, 2),
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
            out[name] = _num(getattr(self, name), 1)
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
            "share_in_band": _num(self.share_in_band, 5),
            "share_above_floor": _num(self.share_above_floor, 5),
            "min_v": _num(self.min_v, 2),
            "max_v": _num(self.max_v, 2),
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
            "mean_v": _num(self.mean_v, 2),
            "p5_v": _num(self.p5_v, 2),
            "p95_v": _num(self.p95_v, 2),
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
            "slope_v_per_kw": _num(level.slope if level else None, 4),
            "v_at_zero_export": _num(level.intercept if level else None, 2),
            "r": _num(level.r if level else None, 4),
            "residual_sd_v": _num(level.residual_sd if level else None, 3),
            "step_points": step.points if step else 0,
            "step_slope_v_per_kw": _num(step.slope if step else None, 4),
            "step_r": _num(step.r if step else None, 4),
            "phases_fed": self.phases_fed,
            "impedance_ohm": _num(self.impedance_ohm, 4),
            "max_export_kw": _num(self.max_export_kw, 3),
            "likely_over_voltage_export_kw": _num(self.likely_over_voltage_export_kw, 3),
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


# --- the report over stored history --------------------------------------------------------------


@dataclass
class _Phase:
    """What is kept of one phase across chunks: 10-min means, minutes beyond the trip settings, sums."""

    name: str
    t10: list[FloatArray] = field(default_factory=list)
    v10: list[FloatArray] = field(default_factory=list)
    w10: list[FloatArray] = field(default_factory=list)
    trips: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = field(default_factory=list)
    level: Sums = field(default_factory=lambda: Sums(0.0, 230.0))
    step: Sums = field(default_factory=Sums)
    v_sum: float = 0.0
    v_n: int = 0
    max_export_kw: float = -math.inf

    def add(self, h: History, limits: VoltageLimits) -> None:
        f, width = h.fields[self.name], h.resolution.seconds
        t10, v10, w10 = ten_minute_means(h.times, f.mean, f.count, width)
        self.t10.append(t10)
        self.v10.append(v10)
        self.w10.append(w10)
        beyond = (f.count > 0) & ((f.max > limits.trip_over_v) | (f.min < limits.trip_under_v))
        self.trips.append(
            (h.times[beyond], np.full(int(beyond.sum()), float(width)), f.max[beyond], f.min[beyond])
        )
        valid = np.isfinite(f.mean) & (f.count > 0)
        self.v_sum += float(f.mean[valid].sum())
        self.v_n += int(valid.sum())
        grid = h.fields.get("grid_w")
        if grid is None:
            return
        export_kw = -grid.mean / 1000.0
        volts = np.where(valid, f.mean, np.nan)
        self.level.add(export_kw, volts)
        if np.isfinite(export_kw).any():
            self.max_export_kw = max(self.max_export_kw, float(np.nanmax(export_kw)))
        follows = np.abs(np.diff(h.times) - width) < 1e-6
        self.step.add(np.diff(export_kw)[follows], np.diff(volts)[follows])

    def series(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        cat = np.concatenate
        return (cat(self.t10), cat(self.v10), cat(self.w10)) if self.t10 else (np.empty(0),) * 3

    def events(self, limits: VoltageLimits) -> list[VoltageEvent]:
        t, v, w = self.series()
        out = threshold_events(EventKind.OVER_10MIN, self.name, t, w, v, limits.over_v)
        out += threshold_events(EventKind.UNDER_10MIN, self.name, t, w, v, limits.under_v)
        if self.trips:
            tt, tw, hi, lo = (np.concatenate(p) for p in zip(*self.trips, strict=True))
            out += threshold_events(EventKind.OVER_TRIP, self.name, tt, tw, hi, limits.trip_over_v)
            out += threshold_events(EventKind.UNDER_TRIP, self.name, tt, tw, lo, limits.trip_under_v)
        return sorted(out, key=lambda e: (e.start, e.kind.value))


@dataclass(frozen=True)
class VoltageReport:
    start: datetime
    end: datetime
    status: DataStatus
    message: str
    limits: VoltageLimits
    phases: tuple[str, ...]
    resolution: str  # of the means judged: "10min", or "15min" where 1-min rollups had expired
    intervals: dict[str, int]
    weeks: list[WeekQuality]
    events: list[VoltageEvent]
    profile: list[HourStats]
    correlation: list[ExportCorrelation]
    critical: list[EventContext]

    def summary(self) -> dict[str, dict[str, JsonValue]]:
        """Per phase: means judged, share in band, extremes, event counts."""
        out: dict[str, dict[str, JsonValue]] = {}
        for phase in self.phases:
            weeks = [w for w in self.weeks if w.phase == phase]
            n = sum(w.intervals for w in weeks)
            counts = {k.value: sum(e.kind is k and e.phase == phase for e in self.events) for k in EventKind}
            out[phase] = {
                "intervals": n,
                "share_in_band": _num(sum(w.share_in_band * w.intervals for w in weeks) / n, 5)
                if n
                else None,
                "min_v": _num(min(w.min_v for w in weeks), 2) if weeks else None,
                "max_v": _num(max(w.max_v for w in weeks), 2) if weeks else None,
                "events": dict(counts),
            }
        return out

    def to_dict(self) -> dict[str, JsonValue]:
        lim = self.limits
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "status": self.status.value,
            "message": self.message,
            "resolution": self.resolution,
            "limits": {
                "nominal_v": lim.nominal_v,
                "over_v": _num(lim.over_v, 2),
                "under_v": _num(lim.under_v, 2),
                "floor_v": _num(lim.floor_v, 2),
                "trip_over_v": lim.trip_over_v,
                "trip_under_v": lim.trip_under_v,
            },
            "phases": list(self.phases),
            "summary": dict(self.summary()),
            "weeks": [w.to_dict() for w in self.weeks],
            "events": [e.to_dict() for e in self.events],
            "profile": [p.to_dict() for p in self.profile],
            "correlation": [c.to_dict() for c in self.correlation],
            "critical": [c.to_dict() for c in self.critical],
        }


async def recorded_fields(data: DataManager) -> tuple[tuple[str, ...], bool]:
    """The voltage fields that storage has ever held, and whether it holds grid power."""
    known = await data.series.known_series()
    return tuple(f for f in PHASE_FIELDS if ("snapshot", f) in known), ("snapshot", "grid_w") in known


async def voltage_report(
    data: DataManager,
    start: datetime,
    end: datetime,
    tz: tzinfo = UTC,
    limits: VoltageLimits = VoltageLimits(),
    *,
    phases_fed: int | None = None,
    critical: int = 20,
) -> VoltageReport:
    """Voltage quality over [start, end) (see the module docstring); ``critical`` events get context."""
    if end <= start:
        raise ValueError(f"voltage report: end {end.isoformat()} must be after start {start.isoformat()}")
    try:
        names, has_grid = await recorded_fields(data)
    except StorageError as exc:
        return _empty_report(start, end, limits, DataStatus.ERROR, str(exc))
    if not names:
        return _empty_report(start, end, limits, DataStatus.ERROR, "no grid voltage (grid_v1..3) recorded")
    phases = [_Phase(n) for n in names]
    statuses: list[DataStatus] = []
    notes: list[str] = []
    widths: set[int] = set()
    t0 = datetime.fromtimestamp(math.floor(start.timestamp() / TEN_MIN_S) * TEN_MIN_S, UTC)
    while t0 < end:
        t1 = min(t0 + CHUNK, end)
        volts = await data.history([*names, *(["grid_w"] if has_grid else [])], t0, t1, Resolution.MIN1)
        statuses.append(volts.status)
        week = f"week from {t0.astimezone(tz):%Y-%m-%d %H:%M}"
        if volts.data is None:
            notes.append(f"{week}: {volts.message}")
        else:
            h = volts.data
            if volts.status is not DataStatus.REAL:
                notes.append(f"{week}: {volts.message}")
            widths.add(h.resolution.seconds)
            for phase in phases:
                phase.add(h, limits)
        t0 = t1
    fed = phases_fed or len(phases)
    events = sorted((e for p in phases for e in p.events(limits)), key=lambda e: (e.start, e.phase))
    weeks, profile, fits = [], [], []
    for p in phases:
        t, v, _ = p.series()
        weeks += weekly_quality(p.name, t, v, tz, limits)
        profile += hourly_profile(p.name, t, v, tz)
        fits.append(
            correlation(
                p.name,
                p.level,
                p.step,
                p.v_sum / p.v_n if p.v_n else limits.nominal_v,
                p.max_export_kw,
                fed,
                limits,
            )
        )
    ranked = sorted(events, key=lambda e: -e.severity_v(limits.nominal_v))[: max(0, critical)]
    contexts = [await event_context(data, e) for e in sorted(ranked, key=lambda e: e.start)]
    return VoltageReport(
        start,
        end,
        worst(statuses),
        "; ".join(notes[:10]) + (" ..." if len(notes) > 10 else ""),
        limits,
        names,
        "10min" if widths <= {60} else "15min" if widths <= {60, 900} else "mixed",
        {p.name: int(p.series()[0].size) for p in phases},
        weeks,
        events,
        profile,
        fits,
        contexts,
    )


async def event_context(data: DataManager, event: VoltageEvent) -> EventContext:
    """PV, export and load during the event, and the export in the half hour before it."""
    result = await data.history(CONTEXT_FIELDS, event.start - CONTEXT_BEFORE, event.end, Resolution.MIN1)
    if result.data is None:
        return EventContext(event)
    h = result.data
    during = h.times >= event.start.timestamp()

    def stat(name: str, part: BoolArray, how: str, sign: float = 1.0) -> float | None:
        f = h.fields[name]
        values = sign * (f.min if how == "max" and sign < 0 else f.max if how == "max" else f.mean)
        values = values[part & (f.count > 0)]
        if values.size == 0:
            return None
        return float(values.max() if how == "max" else values.mean())

    return EventContext(
        event,
        pv_w_mean=stat("pv_w", during, "mean"),
        pv_w_max=stat("pv_w", during, "max"),
        export_w_mean=stat("grid_w", during, "mean", -1.0),
        export_w_max=stat("grid_w", during, "max", -1.0),
        load_w_mean=stat("load_w", during, "mean"),
        export_w_mean_before=stat("grid_w", ~during, "mean", -1.0),
    )


def _empty_report(
    start: datetime, end: datetime, limits: VoltageLimits, status: DataStatus, message: str
) -> VoltageReport:
    return VoltageReport(start, end, status, message, limits, (), "10min", {}, [], [], [], [], [])
