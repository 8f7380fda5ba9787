"""Manual overrides: one mechanism for MQTT, the CLI and HTTP.

Every override is a row in SQLite (storage's OverrideRecord): whoever asks (an MQTT command, the
``hemsd override`` CLI, the web API) writes a validated row, and the daemon reads the active one
on every tick. Each override expires; the longest allowed is MAX_DURATION, also for a stored row
that says otherwise. ``auto`` ends every
active override; ``undo`` cancels the newest one, so the one before it (if still running) applies
again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.control.commands import ControlMode
from controller.control.executor import Intent
from controller.physics import Action
from storage.records import OverrideRecord

MODES = tuple(ControlMode)
MAX_DURATION = timedelta(hours=24)
DEFAULT_DURATION = timedelta(hours=1)
SOURCES = ("mqtt", "cli", "http", "test")


class OverrideError(ValueError):
    """An override request is invalid; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class OverrideRequest:
    mode: str
    source: str
    duration: timedelta = DEFAULT_DURATION
    power_w: float | None = None
    soc_pct: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise OverrideError(f"override.mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.source not in SOURCES:
            raise OverrideError(f"override.source must be one of {', '.join(SOURCES)}; got {self.source!r}")
        if not timedelta(0) < self.duration <= MAX_DURATION:
            raise OverrideError(
                f"override.duration must be more than 0 and at most {MAX_DURATION}; got {self.duration}"
            )
        if self.power_w is not None and (not math.isfinite(self.power_w) or self.power_w < 0):
            raise OverrideError(f"override.power_w must be a finite value >= 0; got {self.power_w!r}")
        if self.soc_pct is not None and not (math.isfinite(self.soc_pct) and 0 <= self.soc_pct <= 100):
            raise OverrideError(f"override.soc_pct must be within 0..100; got {self.soc_pct!r}")
        if self.mode in ("force_charge", "force_discharge"):
            if self.power_w is None or self.power_w <= 0:
                raise OverrideError(
                    f"override.power_w is required for {self.mode} (W > 0); got {self.power_w!r}"
                )
            if self.soc_pct is None:
                raise OverrideError(f"override.soc_pct is required for {self.mode} (target or floor, %)")

    def record(self, now: datetime) -> OverrideRecord:
        return OverrideRecord(
            created_at=now,
            mode=self.mode,
            source=self.source,
            expires_at=now + self.duration,
            power_w=self.power_w,
            soc_pct=self.soc_pct,
        )


def running(records: Sequence[OverrideRecord], now: datetime) -> list[OverrideRecord]:
    """The overrides begun, neither cancelled nor expired (see :func:`expiry`), newest first."""
    started = (
        r
        for r in records
        if r.cancelled_at is None and r.created_at <= now and r.expires_at is not None and expiry(r) > now
    )
    return sorted(started, key=lambda r: (r.created_at, r.id or 0), reverse=True)


def active(records: Sequence[OverrideRecord], now: datetime) -> OverrideRecord | None:
    """The override in force: the newest running one (an ``auto`` row means none)."""
    newest = next(iter(running(records, now)), None)
    return None if newest is None or newest.mode == "auto" else newest


def expiry(record: OverrideRecord) -> datetime:
    """When ``record`` stops applying: its expiry, and never later than MAX_DURATION after it was made
    (whatever a stored row says: one written by hand or by an older version still ends)."""
    limit = record.created_at + MAX_DURATION
    return limit if record.expires_at is None else min(record.expires_at, limit)


def intent_of(record: OverrideRecord) -> Intent:
    until = record.expires_at.isoformat(timespec="minutes") if record.expires_at else "?"
    reason = f"override {record.mode} from {record.source} until {until}"
    power = record.power_w or 0.0
    if record.mode == ControlMode.FORCE_CHARGE:
        return Intent(Action.CHARGE, power, record.soc_pct, source="override", reason=reason)
    if record.mode == ControlMode.FORCE_DISCHARGE:
        return Intent(Action.DISCHARGE, power, record.soc_pct, source="override", reason=reason)
    if record.mode == ControlMode.HOLD:
        return Intent(Action.HOLD, source="override", reason=reason)
    return Intent(Action.SELF_USE, source="override", reason=reason)
