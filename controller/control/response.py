"""Does the inverter do what it is told? Its measured battery power against a forced command.

After a forced charge or discharge has been written, every fresh reading is compared with it: a
battery charging (or discharging) more than ``executor.response_tolerance_w`` short of the
commanded power is a miss. Where the inverter may rightly stop (the command's SoC target
reached) a reading proves nothing and is not counted. A hold is missed by a battery discharging
more than the tolerance, an idle battery by one charging or discharging more than it (a charge
near the floor, which a BMS may ask for, excepted). Self-use follows the house, but never charges
the battery from the grid nor discharges it into the grid: a battery doing either by more than
the tolerance is an inverter still in a forced mode whatever its settings say (near the floor a
charge is excepted again).

- ``executor.response_readings`` misses in a row: the command is written again (the inverter
  may have lost it);
- as many more: the inverter is marked unreliable, the loop falls back to self-use, and forced
  commands are tried again only after ``executor.response_retry_min``;
- as many readings in a row that follow a forced command (not self-use) clear the mark.

Each step is an event (``inverter.unresponsive``, ``inverter.unreliable``,
``inverter.recovered``), and the mark is part of the site's health (Home Assistant's "Inverter
not following commands" problem sensor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.config.models import ExecutorConfig
from drivers.inverter.types import Command, CommandKind, Snapshot

TARGET_MARGIN_PCT = 1.0  # this near the command's SoC target the inverter may rightly stop


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one reading says: ``action`` is "" (nothing to do), "recommand", "fallback" or "recovered"."""

    action: str
    detail: str = ""


NOTHING = Verdict("")


def shortfall_w(command: Command, snapshot: Snapshot) -> float | None:
    """How far the battery is from the command (W), or None where the reading cannot tell (a
    charge or discharge at its SoC target, an idle battery charged at its floor)."""
    if command.kind is CommandKind.CHARGE:
        target = 100.0 if command.target_soc is None else command.target_soc
        if snapshot.soc_pct >= target - TARGET_MARGIN_PCT:
            return None
        return command.power_w - max(-snapshot.battery_w, 0.0)
    if command.kind is CommandKind.DISCHARGE:
        floor = max(command.target_soc or 0.0, command.min_soc or 0.0)
        if snapshot.soc_pct <= floor + TARGET_MARGIN_PCT:
            return None
        return command.power_w - max(snapshot.battery_w, 0.0)
    if command.kind is CommandKind.HOLD:
        return max(snapshot.battery_w, 0.0)
    near_floor = snapshot.soc_pct <= (command.min_soc or 0.0) + TARGET_MARGIN_PCT
    if command.kind is CommandKind.IDLE:
        if snapshot.battery_w < 0 and near_floor:
            return None
        return abs(snapshot.battery_w)
    from_grid = 0.0 if near_floor else min(-snapshot.battery_w, snapshot.grid_w)
    to_grid = min(snapshot.battery_w, -snapshot.grid_w)
    return max(from_grid, to_grid, 0.0)


@dataclass
class ResponseMonitor:
    """The running count of one inverter's readings against its commands."""

    misses: int = 0
    followed: int = 0
    kind: CommandKind | None = None  # the kind of command the counts are of (a new power keeps them)
    unreliable_since: datetime | None = None
    retry_at: datetime | None = None
    problem: str | None = None  # why the inverter is marked unreliable (None: it is not)

    def holding_off(self, now: datetime) -> bool:
        """Forced commands are not sent now: the inverter ignored the last ones."""
        return self.retry_at is not None and now < self.retry_at

    def observe(
        self,
        command: Command | None,
        since: datetime | None,
        snapshot: Snapshot | None,
        now: datetime,
        config: ExecutorConfig,
    ) -> Verdict:
        """Count one reading against the command in force since ``since``."""
        kind = None if command is None else command.kind
        if kind != self.kind:
            self.kind, self.misses, self.followed = kind, 0, 0
        if command is None or since is None or snapshot is None or snapshot.stale or snapshot.time <= since:
            return NOTHING
        gap = shortfall_w(command, snapshot)
        if gap is None:
            return NOTHING
        n = config.response_readings
        if gap <= config.response_tolerance_w:
            self.misses = 0
            if command.kind is CommandKind.SELF_USE:
                return NOTHING  # self-use followed proves nothing of the forced commands that were not
            self.followed += 1
            if self.problem is not None and self.followed >= n:
                detail = f"the battery follows {_told(command)} again"
                self.unreliable_since = self.retry_at = self.problem = None
                return Verdict("recovered", detail)
            return NOTHING
        self.followed = 0
        self.misses += 1
        detail = (
            f"commanded {_told(command)}, the battery does "
            f"{snapshot.battery_w:+.0f} W (+ discharge) for {self.misses} readings"
        )
        if self.misses == n:
            return Verdict("recommand", detail)
        if self.misses >= 2 * n:
            self.misses = 0
            self.unreliable_since = self.unreliable_since or now
            self.retry_at = now + timedelta(minutes=config.response_retry_min)
            self.problem = detail
            return Verdict("fallback", detail)
        return NOTHING


def _told(command: Command) -> str:
    if command.kind in (CommandKind.CHARGE, CommandKind.DISCHARGE):
        return f"{command.kind.value} {command.power_w:.0f} W"
    return command.kind.value
