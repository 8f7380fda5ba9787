"""Time-of-use zone calendars: which tariff zone an instant falls in.

A calendar is an ordered table of rules (zone, local time range, day types, months); the first
matching rule wins, otherwise the default zone applies. Day types separate workdays, Saturdays,
Sundays and public holidays. Presets for Poland's G11, G12, G12w and G13 are data below.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from drivers.prices.holidays import CALENDARS, holidays


class DayType(enum.StrEnum):
    WORKDAY = "workday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"
    HOLIDAY = "holiday"


ALL_DAYS = frozenset(DayType)
WORKDAYS = frozenset({DayType.WORKDAY})
DAYS_OFF = frozenset({DayType.SATURDAY, DayType.SUNDAY, DayType.HOLIDAY})
ALL_MONTHS = frozenset(range(1, 13))
SUMMER = frozenset(range(4, 10))  # April..September
WINTER = ALL_MONTHS - SUMMER


@dataclass(frozen=True, slots=True)
class ZoneRule:
    """Local minutes-of-day [start, end); end 1440 = midnight; start > end wraps past midnight."""

    zone: str
    start_min: int
    end_min: int
    days: frozenset[DayType] = ALL_DAYS
    months: frozenset[int] = ALL_MONTHS

    def __post_init__(self) -> None:
        if not 0 <= self.start_min < 1440 or not 0 < self.end_min <= 1440 or self.start_min == self.end_min:
            raise ValueError(f"zone rule {self.zone!r}: bad time range {self.start_min}..{self.end_min} min")

    def matches(self, minute: int, day_type: DayType, month: int) -> bool:
        if day_type not in self.days or month not in self.months:
            return False
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min


def _h(hour: int) -> int:
    return hour * 60


@dataclass(frozen=True, slots=True)
class ZonePreset:
    name: str
    default_zone: str
    rules: tuple[ZoneRule, ...]
    description: str


# Zone hours as in PGE Dystrybucja's and Tauron Dystrybucja's tariffs for households (other
# operators shift some hours: check the tariff of your DSO and write custom rules if needed).
PRESETS: tuple[ZonePreset, ...] = (
    ZonePreset("G11", "all", (), "one zone all day"),
    ZonePreset(
        "G12",
        "peak",
        (ZoneRule("offpeak", _h(22), _h(6)), ZoneRule("offpeak", _h(13), _h(15))),
        "off-peak 22-06 and 13-15 every day",
    ),
    ZonePreset(
        "G12w",
        "peak",
        (
            ZoneRule("offpeak", 0, 1440, days=DAYS_OFF),
            ZoneRule("offpeak", _h(22), _h(6)),
            ZoneRule("offpeak", _h(13), _h(15)),
        ),
        "off-peak 22-06 and 13-15, and all day on weekends and public holidays",
    ),
    ZonePreset(
        "G13",
        "offpeak",
        (
            ZoneRule("peak_morning", _h(7), _h(13), days=WORKDAYS),
            ZoneRule("peak_afternoon", _h(19), _h(22), days=WORKDAYS, months=SUMMER),
            ZoneRule("peak_afternoon", _h(16), _h(21), days=WORKDAYS, months=WINTER),
        ),
        "workdays: morning peak 07-13, afternoon peak 19-22 (Apr-Sep) or 16-21 (Oct-Mar); "
        "off-peak otherwise and all day on weekends and public holidays",
    ),
)

PRESET_NAMES = tuple(preset.name for preset in PRESETS)


def preset(name: str) -> ZonePreset:
    for candidate in PRESETS:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown zone preset {name!r} (known: {', '.join(PRESET_NAMES)})")


@dataclass(frozen=True, slots=True)
class ZoneCalendar:
    default_zone: str
    rules: tuple[ZoneRule, ...]
    timezone: ZoneInfo
    holiday_calendar: str = "PL"
    extra_holidays: frozenset[date] = frozenset()

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([self.default_zone, *(rule.zone for rule in self.rules)]))

    def day_type(self, day: date) -> DayType:
        if day in self.extra_holidays or day in holidays(self.holiday_calendar, day.year):
            return DayType.HOLIDAY
        weekday = day.weekday()
        if weekday == 5:
            return DayType.SATURDAY
        if weekday == 6:
            return DayType.SUNDAY
        return DayType.WORKDAY

    def zone_at(self, instant: datetime) -> str:
        if instant.tzinfo is None:
            raise ValueError(f"zone_at needs a timezone-aware instant, got {instant!r}")
        local = instant.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute
        day_type = self.day_type(local.date())
        for rule in self.rules:
            if rule.matches(minute, day_type, local.month):
                return rule.zone
        return self.default_zone


_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
ZoneName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


def _minutes(text: str, field: str) -> int:
    match = _HHMM.match(text)
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"{field} must be 'HH:MM' (00:00..24:00), got {text!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


class ZoneRuleConfig(BaseModel):
    """One custom rule: ``zone`` applies from ``start`` to ``end`` local time on ``days`` in ``months``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: ZoneName
    start: str
    end: str
    days: list[DayType] = Field(default_factory=lambda: list(DayType))
    months: list[Annotated[int, Field(ge=1, le=12)]] = Field(default_factory=lambda: list(range(1, 13)))

    @field_validator("start", "end")
    @classmethod
    def _check_time(cls, value: str, info: ValidationInfo) -> str:
        _minutes(value, info.field_name or "time")
        return value

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        start, end = _minutes(self.start, "start"), _minutes(self.end, "end") or 1440
        if start == 1440:
            raise ValueError(f"start must be before 24:00, got {self.start!r}")
        if start == end:
            raise ValueError(f"start and end must differ, got {self.start!r}..{self.end!r}")
        return self

    def to_rule(self) -> ZoneRule:
        return ZoneRule(
            zone=self.zone,
            start_min=_minutes(self.start, "start"),
            end_min=_minutes(self.end, "end") or 1440,
            days=frozenset(self.days),
            months=frozenset(self.months),
        )


class CalendarConfig(BaseModel):
    """A zone calendar: a named preset, or a default zone plus custom rules (first match wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["G11", "G12", "G12w", "G13"] | None = None
    default_zone: ZoneName | None = None
    rules: list[ZoneRuleConfig] = Field(default_factory=list)
    holidays: Literal["PL", "DE", "none"] = "PL"
    extra_holidays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _preset_or_rules(self) -> Self:
        if self.preset is not None and (self.default_zone is not None or self.rules):
            raise ValueError("give either preset or default_zone/rules, not both")
        if self.preset is None and self.default_zone is None:
            raise ValueError(f"give a preset ({', '.join(PRESET_NAMES)}) or a default_zone with rules")
        if self.holidays not in CALENDARS:
            raise ValueError(f"holidays must be one of {', '.join(CALENDARS)}, got {self.holidays!r}")
        return self

    @property
    def zones(self) -> tuple[str, ...]:
        if self.preset is not None:
            chosen = preset(self.preset)
            return tuple(dict.fromkeys([chosen.default_zone, *(r.zone for r in chosen.rules)]))
        assert self.default_zone is not None  # checked by the validator
        return tuple(dict.fromkeys([self.default_zone, *(r.zone for r in self.rules)]))

    def build(self, timezone: ZoneInfo) -> ZoneCalendar:
        if self.preset is not None:
            chosen = preset(self.preset)
            default_zone, rules = chosen.default_zone, chosen.rules
        else:
            assert self.default_zone is not None
            default_zone, rules = self.default_zone, tuple(rule.to_rule() for rule in self.rules)
        return ZoneCalendar(
            default_zone=default_zone,
            rules=rules,
            timezone=timezone,
            holiday_calendar=self.holidays,
            extra_holidays=frozenset(self.extra_holidays),
        )
