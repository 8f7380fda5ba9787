"""Pure translations between the goodwe library's ET values and the project's inverter values.

- Runtime sensors -> :class:`Snapshot`, the one place where the library's sign conventions are
  corrected (``active_power`` and the meter's power are + export / - import; ``pbattery1`` is
  already + discharge).
- :class:`Command` -> :class:`Target` (the ET settings that realise it) -> ordered :class:`Step` s
  that write only what differs from the settings read from the inverter.
- Settings -> the Command they realise (to reconcile after a restart) and a mode label.

How the Command kinds map onto an ET (205/745 platform):

- self_use: work mode GENERAL, EMS auto.
- charge P W to S %: work mode ECO with group 1 "charge" all day at P as % of rated power and
  SoC target S (eco-mode v2 firmware; v1 groups have no SoC and charge to full).
- discharge P W down to S %: work mode ECO with group 1 "discharge" all day at P %; the ET's
  discharge groups carry no floor, so the floor S goes into the on-grid DoD register
  (``battery_discharge_depth`` holds the SoC floor) and the inverter itself stops at S.
- hold: EMS mode CHARGE_PV with power 0 ("only PV charges the battery; it never discharges"),
  the mode other integrations use on real ETs to stop discharging. For firmware whose EMS modes
  do not work (configuration ``hold_via = "eco"``, or no EMS registers): an eco group at 0 %,
  which the ET treats as "neither charge nor discharge" (PV surplus is then exported, not stored).
- idle: EMS mode BATTERY_STANDBY (8; "PBattery = 0: the battery does not charge and discharge"),
  so a PV surplus is exported and a deficit imported with the battery untouched; without EMS
  registers the eco group at 0 % that the ET treats the same way.
- export limit and DoD floor apply in every mode (None = the configured site defaults).

Self-expiring eco groups (``Policy.eco_window_min``, off by default): instead of all day, group
1 is written for a window from the inverter's current minute to ``eco_window_min`` later (on its
own clock, never past 23:59), and written again when less than half of it is left. If the daemon
dies, the group ends by itself and the inverter, in eco mode without an active group, works as
in self-use. A group whose window has passed reads back as self-use.

Only an eco group carries an end: the EMS mode registers (47511-47512) and the DoD floor stay as
written until written again. With ``eco_window_min`` set, hold and idle are therefore the windowed
0 % group too, not the EMS modes. For idle that is the same behaviour (battery standby: a PV
surplus exported, a deficit imported). For hold it is the same on a PV deficit (the battery does
not discharge) but a PV surplus is exported instead of stored: no form that expires stores a
surplus without ever discharging (a charge group with a SoC target at the present SoC would, in
the model, but it charges from the grid wherever firmware ignores the target, and v1 groups have
no target at all). A 0 % group reads back as hold.

Setting an operation mode through the library writes 47511-47512 = (1, 0): it resets the EMS
mode. The plan therefore sets the operation mode first, treats the EMS as reset afterwards, and
writes EMS settings last.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from drivers.inverter.types import Command, CommandKind, Snapshot

WORK_GENERAL = 0
WORK_ECO = 3
EMS_AUTO = 1
EMS_CHARGE_PV = 2
EMS_BATTERY_STANDBY = 8
FULL_DAY = (0, 0, 23, 59)
ALL_DAYS = 0x7F


@dataclass(frozen=True, slots=True)
class EcoSlot:
    """Eco-mode group 1 as decoded by the library (``power`` < 0 charges, in % of rated power)."""

    start_h: int
    start_m: int
    end_h: int
    end_m: int
    on: bool
    day_bits: int
    power: int
    soc: int

    @classmethod
    def from_sensor(cls, sensor: Any) -> EcoSlot:
        """From the library's EcoModeV1/EcoModeV2 object (its fields after a read or decode)."""
        on_off = int(sensor.on_off)
        return cls(
            int(sensor.start_h),
            int(sensor.start_m),
            int(sensor.end_h),
            int(sensor.end_m),
            -10 < on_off < 0,
            int(sensor.day_bits) & 0x7F,
            int(sensor.get_power()),
            int(getattr(sensor, "soc", 100) or 100),
        )

    @property
    def full_day(self) -> bool:
        return (self.start_h, self.start_m, self.end_h, self.end_m) == FULL_DAY and self.day_bits == ALL_DAYS

    @property
    def window(self) -> tuple[int, int]:
        """(first, last) minute of the day the group covers."""
        return self.start_h * 60 + self.start_m, self.end_h * 60 + self.end_m

    def active_at(self, minute: int) -> bool:
        """Switched on, every day, and ``minute`` of the day (the inverter's clock) inside its window."""
        first, last = self.window
        if not self.on or self.day_bits != ALL_DAYS:
            return False
        return first <= minute <= last if first <= last else minute >= first or minute <= last

    def describe(self) -> str:
        if not self.on:
            return "off"
        verb = "charge" if self.power < 0 else "discharge" if self.power > 0 else "idle"
        window = f"{self.start_h:02d}:{self.start_m:02d}-{self.end_h:02d}:{self.end_m:02d}"
        soc = f" to SoC {self.soc}%" if self.power < 0 else ""
        return f"{verb} {abs(self.power)}%{soc} {window}"


@dataclass(frozen=True, slots=True)
class EtSettings:
    """The ET settings the driver manages, as read. None = not read / not supported."""

    work_mode: int
    eco: EcoSlot | None
    other_groups_on: tuple[bool, ...] | None
    ems_mode: int | None
    ems_power_w: int | None
    export_enabled: bool
    export_limit_w: int
    floor_soc: int

    def as_dict(self) -> dict[str, int | float | str]:
        out: dict[str, int | float | str] = {
            "work_mode": self.work_mode,
            "grid_export": int(self.export_enabled),
            "grid_export_limit": self.export_limit_w,
            "battery_discharge_depth": self.floor_soc,
        }
        if self.eco is not None:
            out["eco_mode_1"] = self.eco.describe()
        if self.ems_mode is not None:
            out["ems_mode"] = self.ems_mode
        if self.ems_power_w is not None:
            out["ems_power_limit"] = self.ems_power_w
        return out


@dataclass(frozen=True, slots=True)
class Target:
    """The ET settings that realise a Command. ``eco_power``/``eco_soc`` only in eco mode."""

    work_mode: int
    eco_power: int | None  # % of rated power, < 0 charge
    eco_soc: int | None
    ems_mode: int | None  # None: firmware without EMS registers
    ems_power_w: int | None  # None: not relevant in this EMS mode
    export_limit_w: int
    export_enable: bool  # the command asks for a limit: the limit switch must be on
    floor_soc: int
    eco_window: tuple[int, int] | None = None  # (first, last) minute of the inverter's day; None = all day
    eco_at_min: int = 0  # the inverter's minute of the day the target was made at
    eco_renew_min: int = 0  # a matching windowed group with less left than this is written again


def minute_of_day(t: datetime) -> int:
    return t.hour * 60 + t.minute


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class Policy:
    """Site values the mapping needs (from the driver's configuration and the inverter's info)."""

    rated_power_w: int
    base_export_limit_w: int  # written when Command.export_limit_w is None
    base_min_soc: float  # floor when Command.min_soc is None
    min_floor_soc: int  # the ET accepts DoD up to 89 %: floors below 11 % are raised to this
    ems_supported: bool  # the EMS registers (47511-47512) answer
    hold_via_ems: bool = True
    eco_window_min: int | None = None  # eco groups expire this long after they were written; None = all day
    inverter_now: datetime | None = None  # the inverter's own (local, naive) clock, as far as known


def _pct_of_rated(power_w: float, rated_w: int) -> int:
    """Power as whole % of rated (what eco groups hold); at least 1 % when asked for any power."""
    pct = round(100.0 * power_w / rated_w)
    return min(100, max(1, pct)) if power_w > 0 else 0


def target_for(command: Command, policy: Policy) -> Target:
    kind = command.kind
    pct = _pct_of_rated(command.power_w, policy.rated_power_w)
    if kind in (CommandKind.CHARGE, CommandKind.DISCHARGE) and pct == 0:
        kind = CommandKind.HOLD  # charging or discharging at 0 W is holding
    floor = command.min_soc if command.min_soc is not None else policy.base_min_soc
    if kind is CommandKind.DISCHARGE and command.target_soc is not None:
        floor = max(floor, command.target_soc)
    limit = command.export_limit_w if command.export_limit_w is not None else policy.base_export_limit_w
    base = Target(
        work_mode=WORK_GENERAL,
        eco_power=None,
        eco_soc=None,
        ems_mode=EMS_AUTO if policy.ems_supported else None,
        ems_power_w=None,
        export_limit_w=min(65535, max(0, round(limit))),
        export_enable=command.export_limit_w is not None,
        floor_soc=min(100, max(policy.min_floor_soc, math.ceil(floor))),
    )
    if kind is CommandKind.SELF_USE:
        return base
    if policy.eco_window_min is not None and policy.inverter_now is not None:
        now = minute_of_day(policy.inverter_now)
        window = (now, min(now + policy.eco_window_min, 23 * 60 + 59))
        base = replace(base, eco_window=window, eco_at_min=now, eco_renew_min=policy.eco_window_min // 2)
    if kind is CommandKind.CHARGE:
        soc = round(command.target_soc if command.target_soc is not None else 100.0)
        return replace(base, work_mode=WORK_ECO, eco_power=-pct, eco_soc=soc)
    if kind is CommandKind.DISCHARGE:
        return replace(base, work_mode=WORK_ECO, eco_power=pct, eco_soc=100)
    # the EMS modes have no end: where groups are to expire, hold and idle are the windowed 0 % group
    expiring = base.eco_window is not None
    if kind is CommandKind.IDLE and policy.ems_supported and not expiring:
        return replace(base, ems_mode=EMS_BATTERY_STANDBY)
    if kind is CommandKind.HOLD and policy.ems_supported and policy.hold_via_ems and not expiring:
        return replace(base, ems_mode=EMS_CHARGE_PV, ems_power_w=0)
    return replace(base, work_mode=WORK_ECO, eco_power=0, eco_soc=100)


class StepKind(enum.Enum):
    DOD = "battery_discharge_depth"
    EXPORT_ENABLE = "grid_export"
    EXPORT_LIMIT = "grid_export_limit"
    ECO_GROUP = "eco_mode_1"
    ECO_SWITCH = "eco_mode_switch"
    OPERATION_MODE = "work_mode"
    EMS_POWER = "ems_power_limit"
    EMS_MODE = "ems_mode"


# Modbus write requests each step costs with goodwe 0.4.x (an operation mode also writes the
# EMS reset, and GENERAL clears the battery-mode parameter).
_STEP_WRITES = {StepKind.OPERATION_MODE: {WORK_GENERAL: 3, WORK_ECO: 2}}


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    value: int
    group: int = 1  # ECO_SWITCH: which group (2..4) to switch off
    soc: int = 100  # ECO_GROUP: the charge target
    window: tuple[int, int] | None = None  # ECO_GROUP: (first, last) minute of the day; None = all day

    @property
    def setting(self) -> str:
        return f"eco_mode_{self.group}_switch" if self.kind is StepKind.ECO_SWITCH else self.kind.value

    @property
    def writes(self) -> int:
        return _STEP_WRITES.get(self.kind, {}).get(self.value, 1)


def eco_matches(current: EcoSlot | None, target: Target, eco_v2: bool) -> bool:
    """Group 1 already does what the target asks (v1 groups carry no SoC: not compared there).

    A windowed target is met by a group active now with at least ``eco_renew_min`` left, or one
    that already runs as late as a new write would (the end of the day).
    """
    if current is None or target.eco_power is None:
        return False
    soc_ok = not eco_v2 or target.eco_power >= 0 or current.soc == target.eco_soc
    same = current.on and current.power == target.eco_power and soc_ok
    if target.eco_window is None:
        return same and current.full_day
    first, last = current.window
    now = target.eco_at_min
    in_window = first <= now <= last and current.day_bits == ALL_DAYS
    long_enough = last - now >= target.eco_renew_min or last >= target.eco_window[1]
    return same and in_window and long_enough


def plan(current: EtSettings, target: Target, eco_v2: bool) -> list[Step]:
    """Writes that take ``current`` to ``target``, in a safe order, nothing that already matches.

    A raised floor is written first (a discharge never runs below it), a lowered one last; the
    eco group before the operation mode that activates it; EMS settings after the operation
    mode, which resets them.
    """
    steps: list[Step] = []
    dod = Step(StepKind.DOD, target.floor_soc) if current.floor_soc != target.floor_soc else None
    if dod and target.floor_soc > current.floor_soc:
        steps.append(dod)
    if target.export_enable and not current.export_enabled:
        steps.append(Step(StepKind.EXPORT_ENABLE, 1))
    if current.export_limit_w != target.export_limit_w:
        steps.append(Step(StepKind.EXPORT_LIMIT, target.export_limit_w))
    ems_mode, ems_power = current.ems_mode, current.ems_power_w
    if target.work_mode == WORK_ECO:
        if target.eco_power is not None and not eco_matches(current.eco, target, eco_v2):
            steps.append(
                Step(
                    StepKind.ECO_GROUP, target.eco_power, soc=target.eco_soc or 100, window=target.eco_window
                )
            )
        for n, on in enumerate(current.other_groups_on or (), start=2):
            if on:
                steps.append(Step(StepKind.ECO_SWITCH, 0, group=n))
    if current.work_mode != target.work_mode:
        steps.append(Step(StepKind.OPERATION_MODE, target.work_mode))
        if ems_mode is not None:
            ems_mode, ems_power = EMS_AUTO, 0
    if target.ems_mode is not None:
        needs_power = target.ems_power_w is not None and ems_power != target.ems_power_w
        if needs_power and target.ems_power_w is not None:
            steps.append(Step(StepKind.EMS_POWER, target.ems_power_w))
        if ems_mode != target.ems_mode:
            steps.append(Step(StepKind.EMS_MODE, target.ems_mode))
    if dod and target.floor_soc < current.floor_soc:
        steps.append(dod)
    return steps


def mismatches(after: EtSettings, target: Target, eco_v2: bool) -> tuple[str, ...]:
    """What the read-back shows differently from the target (empty when all settings took)."""
    out: list[str] = []

    def differ(name: str, wanted: object, read: object) -> None:
        if wanted != read:
            out.append(f"{name}: wanted {wanted}, read {read}")

    differ("work_mode", target.work_mode, after.work_mode)
    if target.work_mode == WORK_ECO and target.eco_power is not None:
        if not eco_matches(after.eco, target, eco_v2):
            window = target.eco_window
            when = "all day" if window is None else f"{_hhmm(window[0])}-{_hhmm(window[1])}"
            wanted = f"{target.eco_power}% soc {target.eco_soc}% {when}"
            out.append(
                f"eco_mode_1: wanted {wanted}, read {after.eco.describe() if after.eco else 'unreadable'}"
            )
        if any(after.other_groups_on or ()):
            out.append(f"eco groups 2-4: wanted off, read on {after.other_groups_on}")
    if target.ems_mode is not None:
        differ("ems_mode", target.ems_mode, after.ems_mode)
        if target.ems_power_w is not None:
            differ("ems_power_limit", target.ems_power_w, after.ems_power_w)
    differ("grid_export_limit", target.export_limit_w, after.export_limit_w)
    if target.export_enable:
        differ("grid_export", True, after.export_enabled)
    differ("battery_discharge_depth", target.floor_soc, after.floor_soc)
    return tuple(out)


def command_from_settings(s: EtSettings, policy: Policy) -> Command | None:
    """The Command these settings realise, or None when they are something the driver never writes."""
    limit = None if s.export_limit_w == policy.base_export_limit_w else float(s.export_limit_w)
    min_soc = float(s.floor_soc)
    if s.ems_mode not in (None, EMS_AUTO):
        if s.ems_mode == EMS_CHARGE_PV and s.ems_power_w == 0:
            return Command(CommandKind.HOLD, export_limit_w=limit, min_soc=min_soc)
        if s.ems_mode == EMS_BATTERY_STANDBY:
            return Command(CommandKind.IDLE, export_limit_w=limit, min_soc=min_soc)
        return None
    if s.work_mode == WORK_GENERAL:
        return Command(CommandKind.SELF_USE, export_limit_w=limit, min_soc=min_soc)
    eco = s.eco
    if s.work_mode != WORK_ECO or eco is None or not eco.on or any(s.other_groups_on or ()):
        return None
    if not eco.full_day:
        if eco.day_bits != ALL_DAYS or policy.inverter_now is None:
            return None  # a schedule of someone else's, or a window that cannot be judged now
        if not eco.active_at(minute_of_day(policy.inverter_now)):
            # the window has passed (or not begun): eco mode without an active group is self-use
            return Command(CommandKind.SELF_USE, export_limit_w=limit, min_soc=min_soc)
    power_w = abs(eco.power) / 100.0 * policy.rated_power_w
    if eco.power < 0:
        return Command(CommandKind.CHARGE, power_w, float(eco.soc), limit, min_soc)
    if eco.power > 0:
        return Command(CommandKind.DISCHARGE, power_w, min_soc, limit, None)
    return Command(CommandKind.HOLD, export_limit_w=limit, min_soc=min_soc)


def mode_label(s: EtSettings | None, policy: Policy) -> str:
    if s is None:
        return ""
    command = command_from_settings(s, policy)
    if command is not None:
        return command.kind.value
    if s.ems_mode not in (None, EMS_AUTO):
        return f"ems_{s.ems_mode}"
    return f"work_mode_{s.work_mode}"


_REQUIRED = ("ppv", "pbattery1", "active_power", "battery_soc")
_TEMPERATURES = (
    ("inverter", "temperature"),
    ("inverter_air", "temperature_air"),
    ("battery", "battery_temperature"),
)
_COUNTERS = (
    ("pv", "e_total"),
    ("export", "e_total_exp"),
    ("import", "e_total_imp"),
    ("load", "e_load_total"),
    ("battery_charge", "e_bat_charge_total"),
    ("battery_discharge", "e_bat_discharge_total"),
)


@dataclass(frozen=True, slots=True)
class PowerBound:
    """A runtime power no true reading reaches: ``per_rated`` times the inverter's rated power
    where the flow passes the inverter (``fixed_w`` while the rating is unknown), ``fixed_w``
    where it does not; ``edges`` are the register type's own ends, which a saturated or unset
    register reads as."""

    sensor: str
    per_rated: float | None
    fixed_w: float
    edges: tuple[int, ...] = ()


S16_EDGES = (-32768, 32767)
POWER_BOUNDS = (
    PowerBound("ppv", 3.0, 200_000.0),  # PV arrays on ETs are at most about twice the rating
    PowerBound("pbattery1", 3.0, 200_000.0),
    PowerBound("active_power", 3.0, 200_000.0, S16_EDGES),
    PowerBound("meter_active_power_total", None, 200_000.0),  # the house's connection, not the inverter
)


def _check_powers(data: Mapping[str, Any], rated_power_w: float | None, meter_ok: bool) -> None:
    for bound in POWER_BOUNDS:
        value: Any = data.get(bound.sensor)
        if not _number(value) or (bound.sensor == "meter_active_power_total" and not meter_ok):
            continue
        limit = bound.fixed_w
        if bound.per_rated is not None and rated_power_w:
            limit = bound.per_rated * rated_power_w
        if abs(value) > limit or value in bound.edges:
            raise ValueError(
                f"goodwe runtime data: sensor {bound.sensor!r} {value!r} W is not a reading "
                f"(beyond {limit:.0f} W, or the register's end)"
            )


def _number(value: Any) -> bool:
    """A finite int or float (bool, None, NaN and infinities are not readings)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def snapshot_from_runtime(
    data: Mapping[str, Any], time: datetime, mode: str, rated_power_w: float | None = None
) -> Snapshot:
    """Snapshot from ``read_runtime_data()``; raises ValueError naming a missing or impossible sensor
    value (a damaged frame; powers beyond :data:`POWER_BOUNDS`). Optional values that are not
    finite numbers are left out."""
    for sensor in _REQUIRED:
        if not _number(data.get(sensor)):
            raise ValueError(
                f"goodwe runtime data: sensor {sensor!r} missing or not a finite number: {data.get(sensor)!r}"
            )
    if not 0 <= data["battery_soc"] <= 100:
        raise ValueError(f"goodwe runtime data: battery_soc {data['battery_soc']!r} is not a percentage")
    pv_w = float(data["ppv"])
    battery_w = float(data["pbattery1"])  # + discharge, as ours
    meter_ok = data.get("meter_comm_status") == 1 and _number(data.get("meter_active_power_total"))
    _check_powers(data, rated_power_w, meter_ok)
    export_w = float(data["meter_active_power_total"] if meter_ok else data["active_power"])
    grid_w = 0.0 - export_w  # library: + export; ours: + import (0.0 - : no negative zero)
    volts = tuple(float(data[k]) for k in ("vgrid", "vgrid2", "vgrid3") if _number(data.get(k)) and data[k])
    hz = data.get("fgrid")
    return Snapshot(
        time=time,
        pv_w=pv_w,
        load_w=pv_w + battery_w + grid_w,
        grid_w=grid_w,
        battery_w=battery_w,
        soc_pct=float(data["battery_soc"]),
        grid_v=volts,
        grid_hz=float(hz) if _number(hz) and hz else None,
        temperatures={k: float(data[s]) for k, s in _TEMPERATURES if _number(data.get(s))},
        counters_kwh={k: float(data[s]) for k, s in _COUNTERS if _number(data.get(s))},
        mode=mode,
    )
