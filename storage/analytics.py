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

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np

from storage import StorageError
from storage.datamanager import DataManager
from storage.records import DataStatus, FloatArray, History, JsonValue, Resolution
from storage.voltage_stats import (
    PHASE_FIELDS,
    TEN_MIN_S,
    BoolArray,
    EventContext,
    EventKind,
    ExportCorrelation,
    HourStats,
    Sums,
    VoltageEvent,
    VoltageLimits,
    WeekQuality,
    correlation,
    hourly_profile,
    rounded,
    ten_minute_means,
    threshold_events,
    weekly_quality,
    worst,
)

EN_50160 = VoltageLimits()  # 230 V nominal, the trips at their defaults
CONTEXT_FIELDS = ("pv_w", "grid_w", "load_w")
CHUNK = timedelta(days=7)
CONTEXT_BEFORE = timedelta(minutes=30)


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
                "share_in_band": rounded(sum(w.share_in_band * w.intervals for w in weeks) / n, 5)
                if n
                else None,
                "min_v": rounded(min(w.min_v for w in weeks), 2) if weeks else None,
                "max_v": rounded(max(w.max_v for w in weeks), 2) if weeks else None,
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
                "over_v": rounded(lim.over_v, 2),
                "under_v": rounded(lim.under_v, 2),
                "floor_v": rounded(lim.floor_v, 2),
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
    limits: VoltageLimits = EN_50160,
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
