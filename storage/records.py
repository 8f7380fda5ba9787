"""The values storage accepts and returns: points, rows of the SQLite tables, and read results.

Time series (InfluxDB measurements; the same names key the SQLite rollups)
--------------------------------------------------------------------------
Every point carries the tags ``site`` (the site id) and ``device`` (the inverter serial, or its
name when the serial is unknown). Numeric fields are always floats; times are UTC.

- ``snapshot``: one inverter reading. Fields ``pv_w``, ``load_w``, ``grid_w`` (+import / -export),
  ``battery_w`` (+discharge / -charge), ``soc_pct``, ``grid_v1``..``grid_v3``, ``grid_hz``,
  ``temp_<name>_c`` (e.g. ``temp_battery_c``), lifetime counters ``<name>_kwh`` and, with
  ``[[loads]]``, ``flex_loads_w``: what the flexible loads drew (part of ``load_w``), and
  ``flex_load_<name>_w``: a load's own measured power (where its power topic reports it), with
  ``flex_load_<name>_own``: 1 while it follows its own control (no plan), else 0. Sampled:
  SQLite keeps 1 min / 15 min / 1 h rollups (mean, min, max, last, energy in/out).
- ``price``: one tariff slot, time = slot start. ``import_price``, ``export_price`` (currency/kWh).
- ``forecast``: one forecast slot. ``pv_w``, ``load_w``.
- ``plan``: one plan slot. ``soc_pct``, ``grid_w``, ``battery_w``, ``cost``.

``price``, ``forecast`` and ``plan`` are slotted: SQLite keeps the latest value per slot time, a
revision replaces the earlier one. ``MEASUREMENTS`` lists all of this as data (dashboards and tests
check their queries against it).
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from drivers.inverter.types import Snapshot

FloatArray: TypeAlias = npt.NDArray[np.float64]
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
T = TypeVar("T")


def require_utc(value: datetime, name: str) -> datetime:
    """``value`` converted to UTC; a naive datetime is an error naming ``name``."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


def to_ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


# --- measurements ----------------------------------------------------------------------------------


class SeriesKind(enum.StrEnum):
    SAMPLED = "sampled"  # measured samples: rolled up into 1 min / 15 min / 1 h buckets
    SLOTTED = "slotted"  # one value per slot time; the latest revision wins


@dataclass(frozen=True, slots=True)
class MeasurementSpec:
    name: str
    kind: SeriesKind
    fields: tuple[str, ...]
    field_patterns: tuple[str, ...] = ()  # regular expressions of further (dynamic) field names
    tags: tuple[str, ...] = ("site", "device")
    description: str = ""

    def allows(self, field_name: str) -> bool:
        return field_name in self.fields or _matches_any(self.field_patterns, field_name)


@functools.lru_cache(maxsize=4096)
def _matches_any(patterns: tuple[str, ...], name: str) -> bool:
    return any(re.fullmatch(p, name) for p in patterns)


MEASUREMENTS: tuple[MeasurementSpec, ...] = (
    MeasurementSpec(
        "snapshot",
        SeriesKind.SAMPLED,
        ("pv_w", "load_w", "grid_w", "battery_w", "soc_pct", "grid_v1", "grid_v2", "grid_v3", "grid_hz"),
        (
            r"grid_v[1-9]",
            r"temp_[a-z0-9_]+_c",
            r"[a-z0-9_]+_kwh",
            r"(pv|load)_forecast_w",
            r"flex_loads_w",
            r"flex_load_[a-z0-9_]+_w",
            r"flex_load_[a-z0-9_]+_own",
        ),
        description="inverter readings; W, %, V, Hz, degC, lifetime kWh counters; a forecast service's "
        "PV and load imported from Home Assistant (pv_forecast_w, load_forecast_w); what the flexible "
        "loads drew (flex_loads_w, part of load_w), each one's measured power (flex_load_<name>_w) and "
        "whether it followed its own control (flex_load_<name>_own, 1 or 0)",
    ),
    MeasurementSpec(
        "price", SeriesKind.SLOTTED, ("import_price", "export_price"), description="currency/kWh"
    ),
    MeasurementSpec("forecast", SeriesKind.SLOTTED, ("pv_w", "load_w"), description="W per slot"),
    MeasurementSpec(
        "plan", SeriesKind.SLOTTED, ("soc_pct", "grid_w", "battery_w", "cost"), description="per plan slot"
    ),
)
MEASUREMENT_BY_NAME: Mapping[str, MeasurementSpec] = {spec.name: spec for spec in MEASUREMENTS}


def split_series_name(name: str) -> tuple[str, str]:
    """``"pv_w"`` -> (snapshot, pv_w); ``"price.import_price"`` -> (price, import_price); validated."""
    measurement, _, field_name = name.rpartition(".")
    measurement = measurement or "snapshot"
    spec = MEASUREMENT_BY_NAME.get(measurement)
    if spec is None:
        known = ", ".join(MEASUREMENT_BY_NAME)
        raise ValueError(f"field {name!r}: unknown measurement {measurement!r} (known: {known})")
    if not spec.allows(field_name):
        raise ValueError(f"field {name!r}: {measurement} has no field {field_name!r}")
    return measurement, field_name


def series_name(measurement: str, field_name: str) -> str:
    return field_name if measurement == "snapshot" else f"{measurement}.{field_name}"


@dataclass(frozen=True, slots=True)
class Point:
    """One time-series point: a measurement at one instant with float fields and string tags."""

    measurement: str
    time: datetime
    fields: Mapping[str, float]
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = MEASUREMENT_BY_NAME.get(self.measurement)
        if spec is None:
            raise ValueError(f"Point.measurement: unknown measurement {self.measurement!r}")
        object.__setattr__(self, "time", require_utc(self.time, "Point.time"))
        if not self.fields:
            raise ValueError(f"Point.fields: a {self.measurement} point needs at least one field")
        clean: dict[str, float] = {}
        for name, value in self.fields.items():
            if not spec.allows(name):
                raise ValueError(f"Point.fields: {self.measurement} has no field {name!r}")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"Point.fields[{name!r}] must be a finite number, got {value!r}")
            clean[name] = number
        object.__setattr__(self, "fields", clean)
        for key in spec.tags:
            if not self.tags.get(key):
                raise ValueError(f"Point.tags: {self.measurement} needs the tag {key!r}")


def snapshot_point(
    snapshot: Snapshot, site: str, device: str, extra: Mapping[str, float] | None = None
) -> Point:
    """The ``snapshot`` point of a reading, with ``extra`` fields measured beside it.

    Non-finite values (NaN from a bad frame) and names outside the published fields are left out
    (the caller can compare with ``snapshot.fields()`` to report them).
    """
    spec = MEASUREMENT_BY_NAME["snapshot"]
    fields = snapshot.fields() if not extra else {**snapshot.fields(), **extra}
    values = {k: v for k, v in fields.items() if math.isfinite(v) and spec.allows(k)}
    return Point("snapshot", snapshot.time, values, {"site": site, "device": device})


def price_point(start: datetime, import_price: float, export_price: float, site: str, device: str) -> Point:
    fields = {"import_price": import_price, "export_price": export_price}
    return Point("price", start, fields, {"site": site, "device": device})


def forecast_point(time: datetime, pv_w: float, load_w: float, site: str, device: str) -> Point:
    return Point("forecast", time, {"pv_w": pv_w, "load_w": load_w}, {"site": site, "device": device})


def plan_point(
    time: datetime, soc_pct: float, grid_w: float, battery_w: float, cost: float, site: str, device: str
) -> Point:
    fields = {"soc_pct": soc_pct, "grid_w": grid_w, "battery_w": battery_w, "cost": cost}
    return Point("plan", time, fields, {"site": site, "device": device})


# --- rows of the SQLite tables ---------------------------------------------------------------------


class SessionKind(enum.StrEnum):
    CHARGE = "charge"
    DISCHARGE = "discharge"


class SessionTrigger(enum.StrEnum):
    PLAN = "plan"
    OVERRIDE = "override"
    EMERGENCY = "emergency"


class SessionStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A charging (from the grid) or discharging (to the grid) session; ``id`` is chosen by the caller."""

    id: str
    kind: SessionKind
    start: datetime
    soc_start: float
    trigger: SessionTrigger
    status: SessionStatus = SessionStatus.OPEN
    end: datetime | None = None
    soc_end: float | None = None
    grid_kwh: float = 0.0
    pv_kwh: float = 0.0
    out_kwh: float = 0.0
    avg_price: float | None = None
    cost: float = 0.0
    source: str = "live"

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("SessionRecord.id must not be empty")
        object.__setattr__(self, "kind", SessionKind(self.kind))
        object.__setattr__(self, "trigger", SessionTrigger(self.trigger))
        object.__setattr__(self, "status", SessionStatus(self.status))
        object.__setattr__(self, "start", require_utc(self.start, "SessionRecord.start"))
        if self.end is not None:
            end = require_utc(self.end, "SessionRecord.end")
            if end < self.start:
                raise ValueError(
                    f"SessionRecord.end {end.isoformat()} is before start {self.start.isoformat()}"
                )
            object.__setattr__(self, "end", end)
        for name in ("soc_start", "soc_end"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 100.0:
                raise ValueError(f"SessionRecord.{name} must be within 0..100 %, got {value!r}")
        for name in ("grid_kwh", "pv_kwh", "out_kwh"):
            if getattr(self, name) < 0:
                raise ValueError(f"SessionRecord.{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A plan as stored: its slots as JSON-able mappings (start, action, targets, expected values)."""

    created_at: datetime
    horizon_start: datetime
    horizon_end: datetime
    inputs_digest: str
    solve_ms: float
    slots: tuple[Mapping[str, JsonValue], ...]
    totals: Mapping[str, JsonValue] = field(default_factory=dict)
    explanation: str = ""
    trigger: str = "schedule"
    id: int | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "horizon_start", "horizon_end"):
            object.__setattr__(self, name, require_utc(getattr(self, name), f"PlanRecord.{name}"))
        if self.horizon_end <= self.horizon_start:
            raise ValueError(
                f"PlanRecord.horizon_end {self.horizon_end.isoformat()} is not after horizon_start"
            )
        object.__setattr__(self, "slots", tuple(self.slots))


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the executor decided at one tick and whether the inverter took it."""

    time: datetime
    action: str
    reason: str = ""
    command: Mapping[str, JsonValue] = field(default_factory=dict)
    plan_id: int | None = None
    trigger: str = "plan"
    applied: bool = True
    source: str = "live"
    source_key: str | None = None  # unique per source; makes imports idempotent
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", require_utc(self.time, "DecisionRecord.time"))
        if not self.action:
            raise ValueError("DecisionRecord.action must not be empty")


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """Something worth keeping: an error, stale data, an override, a write to the inverter."""

    time: datetime
    kind: str
    message: str
    severity: Severity = Severity.INFO
    data: Mapping[str, JsonValue] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", require_utc(self.time, "EventRecord.time"))
        object.__setattr__(self, "severity", Severity(self.severity))
        if not self.kind:
            raise ValueError("EventRecord.kind must not be empty")


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """A manual mode request (auto, self_use, force_charge, hold, force_discharge) with its expiry."""

    created_at: datetime
    mode: str
    source: str
    expires_at: datetime | None = None
    power_w: float | None = None
    soc_pct: float | None = None
    cancelled_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", require_utc(self.created_at, "OverrideRecord.created_at"))
        for name in ("expires_at", "cancelled_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, require_utc(value, f"OverrideRecord.{name}"))
        if not self.mode:
            raise ValueError("OverrideRecord.mode must not be empty")


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """One accepted configuration: ``source`` is file, mqtt, cli or rollback."""

    version: int
    created_at: datetime
    source: str
    digest: str
    text: str


# --- read results ----------------------------------------------------------------------------------


class DataStatus(enum.StrEnum):
    REAL = "REAL"  # complete data from the preferred source
    PARTIAL = "PARTIAL"  # from the preferred source, with gaps
    FALLBACK = "FALLBACK"  # from a lesser source or resolution than asked for
    ERROR = "ERROR"  # nothing could be read; ``message`` says why


@dataclass(frozen=True, slots=True)
class DataResult(Generic[T]):
    """Data plus how far to trust it: status, the source used, and the age of the newest value."""

    data: T | None
    status: DataStatus
    source: str
    age_s: float | None = None
    message: str = ""
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not DataStatus.ERROR and self.data is not None


class Resolution(enum.StrEnum):
    RAW = "raw"
    MIN1 = "1min"
    MIN15 = "15min"
    HOUR1 = "1h"

    @property
    def seconds(self) -> int:
        return _RESOLUTION_SECONDS[self]


_RESOLUTION_SECONDS = {Resolution.RAW: 0, Resolution.MIN1: 60, Resolution.MIN15: 900, Resolution.HOUR1: 3600}
ROLLUP_RESOLUTIONS: tuple[Resolution, ...] = (Resolution.MIN1, Resolution.MIN15, Resolution.HOUR1)


@dataclass(frozen=True, slots=True, eq=False)
class FieldHistory:
    """Per-bucket statistics of one field, aligned with ``History.times``; NaN where no data.

    At raw resolution mean = min = max = last = the sample and count = 1. ``energy_in_wh`` and
    ``energy_out_wh`` integrate the positive and the negative part of power fields (``*_w``);
    they are NaN for other fields.
    """

    mean: FloatArray
    min: FloatArray
    max: FloatArray
    last: FloatArray
    count: FloatArray
    energy_in_wh: FloatArray
    energy_out_wh: FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """History of several fields on one time axis (bucket starts or sample times, epoch seconds).

    ``completeness`` is the share of expected buckets (or samples, at raw resolution) up to now
    that hold data in every sampled field; slotted fields (prices, forecasts, plans) do not count.
    """

    resolution: Resolution
    start: datetime
    end: datetime
    times: FloatArray
    fields: Mapping[str, FieldHistory]
    expected_points: int
    completeness: float

    def datetimes(self) -> list[datetime]:
        return [datetime.fromtimestamp(float(t), UTC) for t in self.times]
