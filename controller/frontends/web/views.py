"""The JSON documents of the HTTP API's read endpoints, and the validation of their query parameters.

Every builder takes the running application (or a storage result) and returns plain JSON data:
times as ISO 8601 UTC strings (history times as epoch seconds, compact for charts), a value that
is not a finite number as null. Query parameters are checked strictly: an unknown or repeated
parameter, or a value out of its range, raises :class:`BadParameterError` naming the parameter and
the value, which the server answers with 400. Nothing from a query reaches storage but typed
values (datetimes, validated field names, integers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from controller import __version__
from controller.control import goals
from controller.control.overrides import active
from controller.planner.inputs import slot_at
from controller.reports.accounting import BASELINE, DayAccount
from controller.status.report import action_state
from drivers.inverter.types import Snapshot
from drivers.plain import plain
from storage.history import choose_resolution
from storage.records import (
    ConfigVersion,
    DataResult,
    FloatArray,
    History,
    Resolution,
    SessionRecord,
    split_series_name,
)
from storage.voltage_stats import VoltageLimits

if TYPE_CHECKING:
    from multidict import MultiMapping

    from controller.status.state import SiteState
    from storage.quality import FieldQuality

MAX_FIELDS = 16
MAX_BUCKETS = 50_000  # per field: a year at 15 min is 35,040
MAX_POINTS = 200_000  # in one answer, every field and statistic counted: about 4 MB of JSON
MAX_RAW_SPAN = timedelta(hours=48)
DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_VOLTAGE_SPAN = timedelta(days=7)
MAX_VOLTAGE_SPAN = timedelta(days=93)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
STATS = ("mean", "min", "max", "last", "count", "energy_in_wh", "energy_out_wh")
RESOLUTIONS = ("auto", *(r.value for r in Resolution))
_SECRET_LINE = re.compile(r"^(\s*[\"']?(?:password|token|api_key)[\"']?\s*=\s*).*$", re.MULTILINE)


class BadParameterError(ValueError):
    """A query parameter or body field that does not fit; the server answers 400."""

    def __init__(self, parameter: str, value: object, reason: str) -> None:
        shown = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if isinstance(shown, str) and len(shown) > 200:
            shown = shown[:197] + "..."
        super().__init__(f"{parameter}={shown!r}: {reason}")
        self.parameter = parameter
        self.value = shown
        self.reason = reason

    def body(self) -> dict[str, object]:
        return {"error": str(self), "parameter": self.parameter, "value": self.value, "reason": self.reason}


# --- query parameters ------------------------------------------------------------------------------


class Query:
    """The query string of one request, checked against the parameters its endpoint accepts."""

    def __init__(self, query: MultiMapping[str], allowed: Iterable[str], now: datetime) -> None:
        self.now = now
        allowed = tuple(allowed)
        for name in query:
            if name not in allowed:
                hint = ", ".join(allowed) or "none"
                raise BadParameterError(name, query.get(name), f"unknown parameter; allowed: {hint}")
            if len(query.getall(name)) > 1:
                raise BadParameterError(name, query.getall(name), "given more than once")
        self._query = query

    def text(self, name: str) -> str | None:
        value = self._query.get(name)
        return None if value is None else str(value)

    def time(self, name: str, default: datetime) -> datetime:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise BadParameterError(
                name, raw, "not an ISO 8601 date-time (e.g. 2026-01-01T00:00:00Z)"
            ) from None
        if value.tzinfo is None:
            raise BadParameterError(
                name, raw, "must carry a UTC offset or Z (e.g. 2026-01-01T00:00:00+01:00)"
            )
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise BadParameterError(name, raw, "out of range") from None
        if not EARLIEST <= value <= self.now + timedelta(days=3650):
            raise BadParameterError(name, raw, f"must be between {EARLIEST.date()} and ten years from now")
        return value

    def day(self, name: str, default: date) -> date:
        raw = self.text(name)
        if raw is None:
            return default
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise BadParameterError(name, raw, "must be a date YYYY-MM-DD")
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            raise BadParameterError(name, raw, "not a valid calendar date") from None
        if not EARLIEST.date() <= value <= self.now.date() + timedelta(days=1):
            raise BadParameterError(name, raw, f"must be between {EARLIEST.date()} and tomorrow")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise BadParameterError(name, raw, f"must be a whole number from {low} to {high}")
        value = int(raw)
        if not low <= value <= high:
            raise BadParameterError(name, raw, f"must be a whole number from {low} to {high}")
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if raw not in options:
            raise BadParameterError(name, raw, f"must be one of {', '.join(options)}")
        return raw

    def names(self, name: str, check: Any, *, required: bool, limit: int) -> list[str] | None:
        """A comma-separated list, each item checked by ``check`` (raises ValueError)."""
        raw = self.text(name)
        if raw is None:
            if required:
                raise BadParameterError(name, None, "is required (comma-separated names, e.g. pv_w,soc_pct)")
            return None
        items = raw.split(",")
        if not raw or len(items) > limit:
            raise BadParameterError(name, raw, f"give 1 to {limit} comma-separated names")
        if len(set(items)) != len(items):
            raise BadParameterError(name, raw, "a name appears more than once")
        for item in items:
            try:
                check(item)
            except ValueError as exc:
                raise BadParameterError(name, item, str(exc)) from None
        return items


def _stat(name: str) -> None:
    if name not in STATS:
        raise ValueError(f"unknown statistic; known: {', '.join(STATS)}")


def _snapshot_field(name: str) -> None:
    if split_series_name(name)[0] != "snapshot":
        raise ValueError("quality is assessed for snapshot fields only (e.g. grid_v1)")


def history_request(query: Query, now: datetime) -> tuple[list[str], datetime, datetime, str, list[str]]:
    """fields, start, end, resolution and statistics of a history request."""
    fields = query.names("fields", split_series_name, required=True, limit=MAX_FIELDS)
    assert fields is not None
    end = query.time("end", now)
    start = query.time("start", end - DEFAULT_SPAN)
    if end <= start:  # name the one the request gave (end defaults to now, start to a day before end)
        given = "end" if query.text("end") is not None else "start"
        raise BadParameterError(given, query.text(given), "end must be after start")
    resolution = query.choice("resolution", "auto", RESOLUTIONS)
    stats = query.names("stats", _stat, required=False, limit=len(STATS)) or ["mean"]
    span = end - start
    if resolution == "raw" and span > MAX_RAW_SPAN:
        raise BadParameterError(
            "resolution", resolution, f"raw covers at most {MAX_RAW_SPAN}; ask for 1min or auto"
        )
    if resolution != "raw":
        effective = (
            choose_resolution(span.total_seconds()) if resolution == "auto" else Resolution(resolution)
        )
        buckets = span.total_seconds() / max(effective.seconds, 1.0)  # raw (auto on a short span): 1 s
        if buckets > MAX_BUCKETS:
            name, value = (
                ("start", query.text("start")) if resolution == "auto" else ("resolution", resolution)
            )
            raise BadParameterError(
                name, value, f"{buckets:.0f} buckets of {effective.value}: at most {MAX_BUCKETS} per field"
            )
        if buckets * len(fields) > MAX_POINTS:
            raise BadParameterError(
                "fields",
                ",".join(fields),
                f"{buckets * len(fields):.0f} points: at most {MAX_POINTS} in one answer",
            )
    return fields, start, end, resolution, stats


def voltage_request(query: Query, now: datetime) -> tuple[datetime, datetime, VoltageLimits, int]:
    """start, end (a week to now by default, at most MAX_VOLTAGE_SPAN), limits and events given context."""
    end = query.time("end", now)
    start = query.time("start", end - DEFAULT_VOLTAGE_SPAN)
    if end <= start:
        given = "end" if query.text("end") is not None else "start"
        raise BadParameterError(given, query.text(given), "end must be after start")
    if end - start > MAX_VOLTAGE_SPAN:
        raise BadParameterError(
            "start", query.text("start"), f"the span is at most {MAX_VOLTAGE_SPAN.days} days"
        )
    nominal = query.integer("nominal_v", 230, 100, 400)
    limits = VoltageLimits(float(nominal), trip_over_v=nominal * 1.15, trip_under_v=nominal * 0.85)
    return start, end, limits, query.integer("critical", 0, 0, 20)


def quality_fields(query: Query) -> list[str] | None:
    return query.names("fields", _snapshot_field, required=False, limit=MAX_FIELDS)


# --- JSON documents --------------------------------------------------------------------------------


def clean(value: Any) -> Any:
    """JSON-ready data (:func:`drivers.plain.plain`: the same encoding as the MQTT state)."""
    return plain(value)


def clean_object(value: Mapping[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = clean(value)
    return document


def snapshot_json(snapshot: Snapshot | None, now: datetime, stale_after_s: float) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    age = (now - snapshot.time).total_seconds()
    document: dict[str, Any] = clean(snapshot)
    document["age_s"] = round(age, 1)
    document["stale"] = snapshot.stale or age > stale_after_s
    return document


async def state_json(app: SiteState, write_enabled: bool) -> dict[str, Any]:
    """The latest snapshot, the action in force and why, the override, current price, settings, health."""
    now = app.clock.now()
    config = app.config
    decision = app.last_decision
    action = None
    if decision is not None:
        slot = slot_at(app.plan, now)
        action = action_state(decision, slot.start if slot else None, slot.end if slot else None)
    price = app.price_now()
    override = active(await app.data.overrides(limit=20), now)
    runtime = (await goals.load(app.data)).current(now)
    in_force = goals.in_force(config.goals, runtime, now, timedelta(0), config.site.zone)
    return clean_object(
        {
            "time": now,
            "site": {"id": config.site.id, "name": config.site.name, "timezone": config.site.timezone},
            "currency": config.site.currency,
            "version": __version__,
            "write_enabled": write_enabled,
            "snapshot": snapshot_json(app.snapshot, now, config.executor.stale_after_s),
            "action": action,
            "override": override,
            "price_now": None
            if price is None
            else {"import": price.import_price, "export": price.export_price},
            "battery": {
                "capacity_kwh": config.battery.capacity_kwh,
                "min_soc_pct": config.battery.min_soc_pct,
                "max_soc_pct": config.battery.max_soc_pct,
                "max_charge_w": config.battery.max_charge_w,
                "max_discharge_w": config.battery.max_discharge_w,
            },
            "price_cap": config.executor.grid_charge_price_cap,
            "goals": {
                "target": None if runtime.target is None else runtime.target.to_json(),
                "reserve": None if runtime.reserve is None else runtime.reserve.to_json(),
                "reserve_in_force_pct": in_force.reserve_at(now),
            },
            "health": await app.health(now),
            "loads": [asdict(state) for state in app.load_states(now)],
        }
    )


def plan_json(app: SiteState) -> dict[str, Any]:
    plan, loads = app.plan, app.load_plan
    return clean_object(
        {
            "currency": app.config.site.currency,
            "trigger": app.plan_trigger if plan is not None else None,
            "explanation": plan.slots[0].explanation if plan is not None and plan.slots else None,
            "plan": plan.to_dict() if plan is not None else None,
            "loads": [s.to_dict() for s in loads.loads] if loads is not None and loads.plan is plan else [],
        }
    )


def prices_json(app: SiteState) -> dict[str, Any]:
    price = app.price_now()
    return clean_object(
        {
            "currency": app.config.site.currency,
            "status": app.price_status,
            "now": None if price is None else {"import": price.import_price, "export": price.export_price},
            "slots": [
                {
                    "start": s.start,
                    "end": s.end,
                    "import_price": s.import_price,
                    "export_price": s.export_price,
                }
                for s in app.prices
            ],
        }
    )


def forecast_json(app: SiteState) -> dict[str, Any]:
    if app.forecast is None:
        return {"source": None, "slots": []}
    starts, result = app.forecast
    slots = [
        {"start": t, "pv_w": round(pv, 1), "load_w": round(load, 1)}
        for t, pv, load in zip(starts, result.pv_w, result.load_w, strict=True)
    ]
    return clean_object({"source": result.source, "slots": slots})


def _series(values: FloatArray, digits: int = 4) -> list[float | None]:
    rounded = np.round(values, digits).astype(object)
    rounded[~np.isfinite(values)] = None
    series: list[float | None] = rounded.tolist()
    return series


def history_status(result: DataResult[History]) -> dict[str, Any]:
    """The part of a history answer that says how far to trust it (it changes between equal reads)."""
    return {
        "status": result.status.value,
        "source": result.source,
        "message": result.message,
        "cached": result.cached,
        "age_s": clean(result.age_s),
    }


def history_data(history: History, stats: list[str]) -> dict[str, Any]:
    """The data part of a history answer: the time axis and the asked statistics per field."""
    return {
        "resolution": history.resolution.value,
        "start": clean(history.start),
        "end": clean(history.end),
        "expected_points": history.expected_points,
        "completeness": round(history.completeness, 4),
        "times": _series(history.times, 3),
        "fields": {
            name: {stat: _series(getattr(field, stat)) for stat in stats}
            for name, field in history.fields.items()
        },
    }


def session_json(session: SessionRecord) -> dict[str, Any]:
    document: dict[str, Any] = clean(session)
    return document


def quality_json(day: date, result: DataResult[list[FieldQuality]]) -> dict[str, Any]:
    return {
        "day": day.isoformat(),
        "status": result.status.value,
        "source": result.source,
        "message": result.message,
        "fields": [clean(q.as_dict()) for q in result.data or []],
    }


def energy_json(day: date, account: DayAccount | None, currency: str) -> dict[str, Any]:
    if account is None:
        return {"day": day.isoformat(), "status": "ERROR", "message": "storage could not be read"}
    document: dict[str, Any] = clean(account)
    document.update(
        status="REAL",
        currency=currency,
        net_cost=round(account.net_cost, 4),
        savings=round(account.savings, 4),
        baseline=BASELINE,
    )
    return document


def redact_toml(text: str) -> str:
    """The configuration text with the values of secret keys (password, token, api_key) hidden."""
    return _SECRET_LINE.sub(lambda m: m.group(1) + '"**********"', text)


def config_version_json(version: ConfigVersion, with_text: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": version.version,
        "created_at": clean(version.created_at),
        "source": version.source,
        "digest": version.digest,
    }
    if with_text:
        document["text"] = redact_toml(version.text)
    return document
