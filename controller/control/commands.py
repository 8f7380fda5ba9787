"""The command language of hemsd: the controls Home Assistant, the HTTP API and the CLI send.

Over MQTT every command topic is ``<base>/<key>/set``; the HTTP API turns its JSON bodies into
the same payloads. A payload is parsed strictly into one typed command
or rejected with a :class:`CommandRejectedError` that names the field and the offending value;
nothing is half-applied, because parsing has no side effects and the caller only ever sees a
complete, valid command.

=================  ======================================================  ===================
key                payload                                                 command
=================  ======================================================  ===================
mode               one of auto, self_use, force_charge, hold,              ModeCommand
                   force_discharge
min_soc            a number (percent)                                      NumberCommand
max_grid_charge_w  a number (W)                                            NumberCommand
price_cap          a number (currency/kWh), or ``None`` to remove the cap  NumberCommand
replan             ``PRESS``                                               ReplanCommand
override           JSON: mode, power_w, target_soc, and expires or minutes OverrideCommand
override_cancel    ``PRESS``                                               CancelOverrideCommand
goal_target        JSON: soc_pct, and at, or by (HH:MM) with optional days GoalTargetCommand
goal_reserve       JSON: soc_pct, and until or hours                       GoalReserveCommand
goal_cancel        ``target`` or ``reserve``                               CancelGoalCommand
load_goal          JSON: load, and at, or by (HH:MM) with optional days;    LoadGoalCommand
                   temperature_c for a water heater or a heat pump
load_goal_cancel   the load's name, or JSON: load and by (a weekly one's)  CancelLoadGoalCommand
=================  ======================================================  ===================

Each load also has its own topics ``<base>/load/<name>_goal/set`` (the ``load_goal`` payload
without ``load``) and ``<base>/load/<name>_goal_cancel/set`` (``PRESS``); they are parsed here too.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from controller.errors import HemsdError

MAX_JSON_PAYLOAD_BYTES = 1024
MAX_SCALAR_PAYLOAD_BYTES = 64
BUTTON_PAYLOAD = "PRESS"
NO_VALUE_PAYLOAD = "None"  # removes a setting that may be absent (the price cap)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class ControlMode(enum.StrEnum):
    AUTO = "auto"
    SELF_USE = "self_use"
    FORCE_CHARGE = "force_charge"
    HOLD = "hold"
    FORCE_DISCHARGE = "force_discharge"


class NumberSetting(enum.StrEnum):
    MIN_SOC = "min_soc"
    MAX_GRID_CHARGE_W = "max_grid_charge_w"
    PRICE_CAP = "price_cap"


class CommandRejectedError(HemsdError):
    """A command payload is invalid; ``field`` and ``value`` say what and where."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={_short(value)!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason

    def report(self, topic: str, at: datetime) -> dict[str, object]:
        """The JSON object published on ``<base>/error``."""
        value = self.value
        plain_json = isinstance(value, str | int | float | bool | type(None)) and not (
            isinstance(value, float) and not math.isfinite(value)
        )
        if not plain_json:
            value = _short(value)
        elif isinstance(value, str):
            value = value[:200]
        return {
            "topic": topic,
            "field": self.field,
            "value": value,
            "error": self.reason,
            "time": at.astimezone(UTC).isoformat(),
        }


def _short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Bounds the command values must respect; also the min/max of the Home Assistant numbers."""

    soc_min_pct: float = 0.0
    soc_max_pct: float = 100.0
    min_soc_ceiling_pct: float = 99.0  # the battery's minimum SoC stays below its maximum
    max_grid_charge_w: float = 10_000.0
    max_discharge_w: float = 10_000.0
    price_cap_min: float = -5.0
    price_cap_max: float = 10.0
    max_override: timedelta = timedelta(hours=24)
    max_goal_ahead: timedelta = timedelta(days=7)  # a one-off target's instant, a reserve's end

    def __post_init__(self) -> None:
        if not 0.0 <= self.soc_min_pct < self.soc_max_pct <= 100.0:
            raise ValueError(
                f"ControlLimits soc range must satisfy 0 <= min < max <= 100, got {self.soc_min_pct}..{self.soc_max_pct}"
            )
        for name in ("max_grid_charge_w", "max_discharge_w"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ControlLimits.{name} must be > 0, got {getattr(self, name)!r}")
        if not self.price_cap_min < self.price_cap_max:
            raise ValueError(
                f"ControlLimits price cap range is empty: {self.price_cap_min}..{self.price_cap_max}"
            )
        if self.max_override <= timedelta(0):
            raise ValueError(f"ControlLimits.max_override must be positive, got {self.max_override}")

    def number_range(self, setting: NumberSetting) -> tuple[float, float]:
        ranges = {
            NumberSetting.MIN_SOC: (
                self.soc_min_pct,
                max(self.soc_min_pct, min(self.min_soc_ceiling_pct, self.soc_max_pct)),
            ),
            NumberSetting.MAX_GRID_CHARGE_W: (0.0, self.max_grid_charge_w),
            NumberSetting.PRICE_CAP: (self.price_cap_min, self.price_cap_max),
        }
        return ranges[setting]


@dataclass(frozen=True, slots=True)
class ModeCommand:
    """Choose a mode: ``auto`` ends every override; any other mode starts an override that lasts
    ``controller.control.overrides.DEFAULT_DURATION`` (one hour) unless changed before."""

    mode: ControlMode
    received_at: datetime


@dataclass(frozen=True, slots=True)
class NumberCommand:
    """Set a numeric setting; ``value`` None removes it (only the price cap may be removed)."""

    setting: NumberSetting
    value: float | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ReplanCommand:
    received_at: datetime


@dataclass(frozen=True, slots=True)
class OverrideCommand:
    """A temporary mode until ``expires`` (UTC).

    ``power_w`` and ``target_soc`` are set for force_charge (charge power, SoC to charge up to)
    and force_discharge (discharge power, SoC floor), and None for the other modes.
    """

    mode: ControlMode
    expires: datetime
    power_w: float | None
    target_soc: float | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CancelOverrideCommand:
    received_at: datetime


@dataclass(frozen=True, slots=True)
class GoalTargetCommand:
    """Reach ``soc_pct`` at the instant ``at``, or at the site's local time ``by``: on each of
    ``days`` (weekly), or without days at its next occurrence (one-off)."""

    soc_pct: float
    at: datetime | None
    by: time | None
    days: tuple[str, ...]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class GoalReserveCommand:
    """Keep at least ``soc_pct`` until ``until`` (UTC)."""

    soc_pct: float
    until: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CancelGoalCommand:
    kind: str  # "target" | "reserve"
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LoadGoalCommand:
    """A flexible load's requirement: an appliance's run done by ``at`` (or the local ``by``: on
    each of ``days``, weekly, or without days its next occurrence), a thermal store at
    ``temperature_c`` or warmer then."""

    load: str
    at: datetime | None
    by: time | None
    temperature_c: float | None
    received_at: datetime
    days: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelLoadGoalCommand:
    """End a load's weekly requirement at the local time ``by``, or (None) the one in force next."""

    load: str
    received_at: datetime
    by: time | None = None


ControlCommand = (
    ModeCommand
    | NumberCommand
    | ReplanCommand
    | OverrideCommand
    | CancelOverrideCommand
    | GoalTargetCommand
    | GoalReserveCommand
    | CancelGoalCommand
    | LoadGoalCommand
    | CancelLoadGoalCommand
)
CommandParser = Callable[[bytes, ControlLimits, datetime], ControlCommand]


def _text(raw: bytes, limit: int) -> str:
    if len(raw) > limit:
        raise CommandRejectedError("payload", raw, f"longer than {limit} bytes ({len(raw)})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandRejectedError("payload", raw, "not valid UTF-8") from exc


def _finite_number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandRejectedError(field, value, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond any float
        raise CommandRejectedError(field, value, "must be finite") from None
    if not math.isfinite(number):
        raise CommandRejectedError(field, value, "must be finite")
    return number


def _in_range(field: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise CommandRejectedError(field, value, f"must be between {low:g} and {high:g}")
    return value


def _parse_mode(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    text = _text(raw, MAX_SCALAR_PAYLOAD_BYTES)
    try:
        mode = ControlMode(text)
    except ValueError as exc:
        options = ", ".join(m.value for m in ControlMode)
        raise CommandRejectedError("mode", text, f"must be one of {options}") from exc
    return ModeCommand(mode=mode, received_at=now)


def _number_parser(setting: NumberSetting, *, removable: bool) -> CommandParser:
    def parse(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
        text = _text(raw, MAX_SCALAR_PAYLOAD_BYTES)
        if removable and text in (NO_VALUE_PAYLOAD, NO_VALUE_PAYLOAD.lower()):
            return NumberCommand(setting=setting, value=None, received_at=now)
        if not _NUMBER.match(text):
            raise CommandRejectedError(setting.value, text, "must be a decimal number")
        value = _finite_number(setting.value, float(text))
        low, high = limits.number_range(setting)
        return NumberCommand(
            setting=setting, value=_in_range(setting.value, value, low, high), received_at=now
        )

    return parse


def _button_parser(make: Callable[[datetime], ControlCommand], field: str) -> CommandParser:
    def parse(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
        text = _text(raw, MAX_SCALAR_PAYLOAD_BYTES)
        if text != BUTTON_PAYLOAD:
            raise CommandRejectedError(field, text, f"a button press must be {BUTTON_PAYLOAD!r}")
        return make(now)

    return parse


def _reject_constant(name: str) -> float:
    raise CommandRejectedError("payload", name, "NaN and Infinity are not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CommandRejectedError(key, value, "appears more than once")
        out[key] = value
    return out


_OVERRIDE_FIELDS = frozenset({"mode", "power_w", "target_soc", "expires", "minutes"})
_POWERED_MODES = {
    ControlMode.FORCE_CHARGE: "max_grid_charge_w",
    ControlMode.FORCE_DISCHARGE: "max_discharge_w",
}


def _json_object(raw: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    text = _text(raw, MAX_JSON_PAYLOAD_BYTES)
    try:
        body = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        raise CommandRejectedError("payload", text, f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise CommandRejectedError("payload", text, "nested too deeply") from exc
    if not isinstance(body, dict):
        raise CommandRejectedError("payload", body, "must be a JSON object")
    unknown = sorted(body.keys() - allowed)
    if unknown:
        names = ", ".join(sorted(allowed))
        name = unknown[0] or '""'  # an empty key still needs a visible name in the report
        raise CommandRejectedError(name, body[unknown[0]], f"unknown field; allowed: {names}")
    return body


def _parse_override(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    body = _json_object(raw, _OVERRIDE_FIELDS)
    if "mode" not in body:
        raise CommandRejectedError("mode", None, "is required")
    try:
        mode = ControlMode(body["mode"]) if isinstance(body["mode"], str) else None
    except ValueError:
        mode = None
    if mode is None:
        options = ", ".join(m.value for m in ControlMode)
        raise CommandRejectedError("mode", body["mode"], f"must be one of {options}")

    power_w: float | None = None
    target_soc: float | None = None
    if mode in _POWERED_MODES:
        for required in ("power_w", "target_soc"):
            if required not in body:
                raise CommandRejectedError(required, None, f"is required for mode {mode.value}")
        limit = getattr(limits, _POWERED_MODES[mode])
        power_w = _finite_number("power_w", body["power_w"])
        if not 0 < power_w <= limit:
            raise CommandRejectedError("power_w", body["power_w"], f"must be > 0 and <= {limit:g} W")
        target_soc = _in_range(
            "target_soc",
            _finite_number("target_soc", body["target_soc"]),
            limits.soc_min_pct,
            limits.soc_max_pct,
        )
    else:
        for forbidden in ("power_w", "target_soc"):
            if forbidden in body:
                raise CommandRejectedError(
                    forbidden, body[forbidden], f"is not allowed for mode {mode.value}"
                )

    return OverrideCommand(
        mode=mode, expires=_expiry(body, limits, now), power_w=power_w, target_soc=target_soc, received_at=now
    )


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TARGET_FIELDS = frozenset({"soc_pct", "at", "by", "days"})
_RESERVE_FIELDS = frozenset({"soc_pct", "until", "hours"})
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _goal_soc(body: dict[str, Any], limits: ControlLimits) -> float:
    if "soc_pct" not in body:
        raise CommandRejectedError("soc_pct", None, "is required")
    value = _finite_number("soc_pct", body["soc_pct"])
    return _in_range("soc_pct", value, limits.soc_min_pct, limits.soc_max_pct)


def _instant(field: str, value: object, limits: ControlLimits, now: datetime) -> datetime:
    """An ISO 8601 date-time with its offset, after now and at most ``max_goal_ahead`` ahead (UTC)."""
    if not isinstance(value, str):
        raise CommandRejectedError(field, value, "must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandRejectedError(field, value, "not an ISO 8601 date-time") from exc
    if when.tzinfo is None:
        raise CommandRejectedError(field, value, "must carry a UTC offset (e.g. 2026-01-01T07:00:00+01:00)")
    try:
        when = when.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise CommandRejectedError(field, value, "out of the range of dates") from exc
    if not now < when <= now + limits.max_goal_ahead:
        raise CommandRejectedError(
            field, value, f"must be after now ({now.isoformat()}) and at most {limits.max_goal_ahead} ahead"
        )
    return when


def _one_of_at_or_by(body: dict[str, Any]) -> None:
    if ("at" in body) == ("by" in body):
        raise CommandRejectedError(
            "by", body.get("by"), "give exactly one of 'by' (local time HH:MM) or 'at' (ISO 8601 with offset)"
        )


def _local_clock(by: Any) -> time:
    if not isinstance(by, str) or not _CLOCK.match(by):
        raise CommandRejectedError("by", by, "must be a local time HH:MM (00:00 to 23:59)")
    return time.fromisoformat(by)


def _parse_goal_target(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    body = _json_object(raw, _TARGET_FIELDS)
    soc = _goal_soc(body, limits)
    _one_of_at_or_by(body)
    _no_days_with_at(body)
    if "at" in body:
        return GoalTargetCommand(soc, _instant("at", body["at"], limits, now), None, (), now)
    return GoalTargetCommand(soc, None, _local_clock(body["by"]), _weekdays(body), now)


def _weekdays(body: dict[str, Any]) -> tuple[str, ...]:
    """The ``days`` of a weekly goal in the week's order (empty: none given)."""
    days = body.get("days", [])
    if not isinstance(days, list) or (days and not all(isinstance(d, str) for d in days)):
        raise CommandRejectedError("days", days, f"must be a list of days ({', '.join(_WEEKDAYS)})")
    for day in days:
        if day not in _WEEKDAYS:
            raise CommandRejectedError("days", day, f"must be one of {', '.join(_WEEKDAYS)}")
    if len(set(days)) != len(days):
        raise CommandRejectedError("days", days, "names a day more than once")
    return tuple(d for d in _WEEKDAYS if d in days)


def _no_days_with_at(body: dict[str, Any]) -> None:
    if "at" in body and "days" in body:
        raise CommandRejectedError("days", body["days"], "is not allowed with 'at' (one instant)")


def _parse_goal_reserve(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    body = _json_object(raw, _RESERVE_FIELDS)
    soc = _goal_soc(body, limits)
    if ("until" in body) == ("hours" in body):
        raise CommandRejectedError(
            "until", body.get("until"), "give exactly one of 'until' (ISO 8601 with offset) or 'hours'"
        )
    if "until" in body:
        return GoalReserveCommand(soc, _instant("until", body["until"], limits, now), now)
    hours = _finite_number("hours", body["hours"])
    longest = limits.max_goal_ahead.total_seconds() / 3600.0
    if not 0 < hours <= longest:
        raise CommandRejectedError("hours", body["hours"], f"must be > 0 and at most {longest:g}")
    return GoalReserveCommand(soc, now + timedelta(hours=hours), now)


def _parse_goal_cancel(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    text = _text(raw, MAX_SCALAR_PAYLOAD_BYTES)
    if text not in ("target", "reserve"):
        raise CommandRejectedError("goal_cancel", text, "must be 'target' or 'reserve'")
    return CancelGoalCommand(text, now)


_LOAD_GOAL_FIELDS = frozenset({"load", "at", "by", "days", "temperature_c"})
_LOAD_GOAL_CANCEL_FIELDS = frozenset({"load", "by"})
_LOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")  # as config.loads.LoadName


def _load_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not _LOAD_NAME.match(value):
        raise CommandRejectedError(field, value, "must be a load's name (a-z, 0-9, _; at most 32)")
    return value


def _parse_load_goal(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    body = _json_object(raw, _LOAD_GOAL_FIELDS)
    if "load" not in body:
        raise CommandRejectedError("load", None, "is required")
    load = _load_name("load", body["load"])
    temperature = None
    if "temperature_c" in body:
        temperature = _in_range(
            "temperature_c", _finite_number("temperature_c", body["temperature_c"]), 0, 100
        )
    _one_of_at_or_by(body)
    _no_days_with_at(body)
    if "at" in body:
        return LoadGoalCommand(load, _instant("at", body["at"], limits, now), None, temperature, now)
    return LoadGoalCommand(load, None, _local_clock(body["by"]), temperature, now, _weekdays(body))


def _parse_load_goal_cancel(raw: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    if not raw.lstrip().startswith(b"{"):
        return CancelLoadGoalCommand(
            _load_name("load_goal_cancel", _text(raw, MAX_SCALAR_PAYLOAD_BYTES)), now
        )
    body = _json_object(raw, _LOAD_GOAL_CANCEL_FIELDS)
    if "load" not in body:
        raise CommandRejectedError("load", None, "is required")
    by = _local_clock(body["by"]) if "by" in body else None
    return CancelLoadGoalCommand(_load_name("load", body["load"]), now, by)


def load_goal_payload(load: str, raw: bytes) -> bytes:
    """The ``load_goal`` payload of a load's own topic's (a JSON object without ``load``);
    CommandRejectedError when it does not read or names a load itself."""
    _load_name("load", load)
    body = _json_object(raw, _LOAD_GOAL_FIELDS - {"load"})
    return json.dumps({"load": load, **body}).encode()


def _expiry(body: dict[str, Any], limits: ControlLimits, now: datetime) -> datetime:
    if ("expires" in body) == ("minutes" in body):
        raise CommandRejectedError(
            "expires",
            body.get("expires"),
            "give exactly one of 'expires' (ISO 8601 with offset) or 'minutes'",
        )
    latest = now + limits.max_override
    if "minutes" in body:
        minutes = body["minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise CommandRejectedError("minutes", minutes, "must be a whole number")
        limit_min = int(limits.max_override.total_seconds() // 60)
        if not 1 <= minutes <= limit_min:
            raise CommandRejectedError("minutes", minutes, f"must be between 1 and {limit_min}")
        return now + timedelta(minutes=minutes)
    value = body["expires"]
    if not isinstance(value, str):
        raise CommandRejectedError("expires", value, "must be an ISO 8601 string")
    try:
        expires = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandRejectedError("expires", value, "not an ISO 8601 date-time") from exc
    if expires.tzinfo is None:
        raise CommandRejectedError(
            "expires", value, "must carry a UTC offset (e.g. 2026-01-01T18:00:00+01:00)"
        )
    try:
        expires = expires.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # year 1 or 9999 shifted past the calendar's end
        raise CommandRejectedError("expires", value, "out of the range of dates") from exc
    if not now < expires <= latest:
        raise CommandRejectedError(
            "expires", value, f"must be after now ({now.isoformat()}) and at most {limits.max_override} ahead"
        )
    return expires


# Commands that set a whole value (or ask for one re-plan): a later one on the same topic makes
# one still waiting pointless. Cancels and loads' goals (one topic for every load) each count.
SUPERSEDING_COMMANDS = (
    ModeCommand,
    NumberCommand,
    OverrideCommand,
    ReplanCommand,
    GoalTargetCommand,
    GoalReserveCommand,
)


@dataclass(frozen=True, slots=True)
class CommandTopic:
    """One command topic ``<base>/<key>/set`` and the parser of its payload."""

    key: str
    parse: CommandParser


COMMAND_TOPICS: tuple[CommandTopic, ...] = (
    CommandTopic("mode", _parse_mode),
    CommandTopic(NumberSetting.MIN_SOC.value, _number_parser(NumberSetting.MIN_SOC, removable=False)),
    CommandTopic(
        NumberSetting.MAX_GRID_CHARGE_W.value,
        _number_parser(NumberSetting.MAX_GRID_CHARGE_W, removable=False),
    ),
    CommandTopic(NumberSetting.PRICE_CAP.value, _number_parser(NumberSetting.PRICE_CAP, removable=True)),
    CommandTopic("replan", _button_parser(lambda at: ReplanCommand(received_at=at), "replan")),
    CommandTopic("override", _parse_override),
    CommandTopic(
        "override_cancel", _button_parser(lambda at: CancelOverrideCommand(received_at=at), "override_cancel")
    ),
    CommandTopic("goal_target", _parse_goal_target),
    CommandTopic("goal_reserve", _parse_goal_reserve),
    CommandTopic("goal_cancel", _parse_goal_cancel),
    CommandTopic("load_goal", _parse_load_goal),
    CommandTopic("load_goal_cancel", _parse_load_goal_cancel),
)
_PARSERS = {topic.key: topic.parse for topic in COMMAND_TOPICS}


def parse_command(key: str, payload: bytes, limits: ControlLimits, now: datetime) -> ControlCommand:
    """The command for ``<base>/<key>/set``; raises CommandRejectedError for anything invalid."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    parser = _PARSERS.get(key)
    if parser is None:
        raise CommandRejectedError("topic", key, f"unknown command; known: {', '.join(sorted(_PARSERS))}")
    try:
        return parser(payload, limits, now.astimezone(UTC))
    except RecursionError as exc:
        raise CommandRejectedError("payload", payload, "nested too deeply") from exc
