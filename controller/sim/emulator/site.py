"""The site behind the emulated inverter, and the firmware logic that drives its battery.

PV and house load come from profiles (callables of time); the battery, grid flow and energy
counters are stepped with the project's one physics model (:mod:`controller.physics`). The
firmware part turns the inverter's settings registers (work mode, eco-mode groups, EMS mode,
export limit, DoD floor) into the battery behaviour the model is asked for.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo

from controller.physics import BatteryParams, GridLimits, IntervalResult, mode_request_w, step
from controller.sim.emulator.registers import EcoGroup, decode_eco_v1, decode_eco_v2

Profile = Callable[[datetime], float]


def solar_profile(
    peak_w: float = 5000.0, sunrise_h: float = 6.0, sunset_h: float = 20.0, tz: tzinfo = UTC
) -> Profile:
    """Clear-sky PV: a half sine between sunrise and sunset (local hours of ``tz``)."""
    if sunset_h <= sunrise_h:
        raise ValueError(f"sunset_h ({sunset_h!r}) must be after sunrise_h ({sunrise_h!r})")

    def pv(t: datetime) -> float:
        local = t.astimezone(tz)
        h = local.hour + local.minute / 60 + local.second / 3600
        if not sunrise_h < h < sunset_h:
            return 0.0
        return peak_w * math.sin(math.pi * (h - sunrise_h) / (sunset_h - sunrise_h))

    return pv


# Long-term mean of measured over clear-sky irradiation per month (January first), roughly that of
# central Europe: December's sky lets through about a quarter of the clear-sky energy, June's more
# than half. The emulated weather draws each day around this, so a demo day looks like its date.
MONTHLY_CLEARNESS = (0.32, 0.40, 0.47, 0.53, 0.57, 0.58, 0.60, 0.60, 0.53, 0.43, 0.32, 0.27)


DAILY_SPREAD = 0.6  # a day's clearness lies within +/- this share of its month's mean


def daily_clearness(day: date, latitude: float, low: float, high: float, seed: int) -> float:
    """A day's clearness: the month's mean times 1 +/- DAILY_SPREAD, drawn uniformly (same seed,
    same weather), within [low, high]; south of the equator the seasons are six months apart."""
    low, high = sorted((low, high))
    month = (day.month - 1 + (6 if latitude < 0 else 0)) % 12
    u = random.Random(f"{seed}-{day.isoformat()}").random()  # noqa: S311 - simulation, not cryptography
    clearness = MONTHLY_CLEARNESS[month] * (1.0 + DAILY_SPREAD * (2.0 * u - 1.0))
    return min(max(clearness, low), high)


def household_profile(
    base_w: float = 300.0, morning_w: float = 900.0, evening_w: float = 1600.0, tz: tzinfo = UTC
) -> Profile:
    """House load: a base plus a morning (07:30) and an evening (19:00) peak, local hours of ``tz``."""

    def load(t: datetime) -> float:
        local = t.astimezone(tz)
        h = local.hour + local.minute / 60
        return (
            base_w
            + morning_w * math.exp(-(((h - 7.5) / 1.0) ** 2))
            + evening_w * math.exp(-(((h - 19.0) / 1.8) ** 2))
        )

    return load


def series_profile(start: datetime, step_s: float, values_w: Sequence[float], repeat: bool = True) -> Profile:
    """Step-wise profile from a series (e.g. measured data); cyclic when ``repeat``, else held at the ends."""
    if start.tzinfo is None:
        raise ValueError(f"series_profile start must be timezone-aware, got {start!r}")
    if step_s <= 0 or not values_w:
        raise ValueError(
            f"series_profile needs step_s > 0 and values, got {step_s!r}, {len(values_w)} values"
        )
    values = [float(v) for v in values_w]

    def series(t: datetime) -> float:
        i = math.floor((t - start).total_seconds() / step_s)
        i = i % len(values) if repeat else min(max(i, 0), len(values) - 1)
        return values[i]

    return series


@dataclass(frozen=True, slots=True)
class EmulatedSiteConfig:
    battery: BatteryParams = field(default_factory=BatteryParams)
    rated_power_w: int = 10000
    phases: int = 3
    nominal_v: float = 230.0
    grid_impedance_ohm: float = 0.3  # per phase: voltage rises with export
    grid_hz: float = 50.0
    initial_soc_pct: float = 50.0
    floor_soc_pct: int = 10  # initial on-grid DoD floor register
    max_step_s: float = 60.0  # physics sub-step when the clock has moved further
    tz: tzinfo = UTC  # the inverter's own clock (timestamp register, eco-mode groups)

    def __post_init__(self) -> None:
        checks = (
            ("rated_power_w", 0 < self.rated_power_w <= 65535),
            ("phases", self.phases in (1, 3)),
            ("nominal_v", self.nominal_v > 0),
            ("grid_impedance_ohm", self.grid_impedance_ohm >= 0),
            ("grid_hz", self.grid_hz > 0),
            ("initial_soc_pct", 0 <= self.initial_soc_pct <= 100),
            ("floor_soc_pct", 0 <= self.floor_soc_pct <= 100),
            ("max_step_s", self.max_step_s > 0),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"emulator.{name} out of range: {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the firmware asks of the battery, and which setting decided it."""

    mode: str  # self_use | charge | discharge | hold | standby
    power_w: float = 0.0
    target_soc: float | None = None
    floor_soc: float = 0.0
    export_limit_w: float = math.inf
    source: str = "work_mode general"


@dataclass(frozen=True, slots=True)
class WorkMode:
    code: int
    name: str
    mode: str  # "eco" = decided by the eco-mode groups


WORK_MODES: tuple[WorkMode, ...] = (
    WorkMode(0, "general", "self_use"),
    WorkMode(1, "off_grid", "self_use"),
    WorkMode(2, "backup", "charge"),  # keeps the battery full for outages, from PV and grid
    WorkMode(3, "eco", "eco"),
    WorkMode(4, "peak_shaving", "self_use"),
    WorkMode(5, "self_use", "self_use"),
)


@dataclass(frozen=True, slots=True)
class EmsMode:
    code: int
    name: str
    mode: str  # "work_mode" = the EMS does not override the work mode
    uses_power: bool


EMS_MODES: tuple[EmsMode, ...] = (
    EmsMode(1, "auto", "work_mode", False),
    EmsMode(2, "charge_pv", "charge", True),  # power 0 = PV only: stores the surplus, never discharges
    EmsMode(3, "discharge_pv", "discharge", True),
    EmsMode(4, "import_ac", "charge", True),
    EmsMode(5, "export_ac", "discharge", True),
    EmsMode(6, "conserve", "hold", False),
    EmsMode(7, "off_grid", "self_use", False),
    EmsMode(8, "battery_standby", "standby", False),
    EmsMode(9, "buy_power", "self_use", False),  # meter-point control: not modelled, behaves as self-use
    EmsMode(10, "sell_power", "self_use", False),
    EmsMode(11, "charge_battery", "charge", True),
    EmsMode(12, "discharge_battery", "discharge", True),
)
_WORK_BY_CODE = {m.code: m for m in WORK_MODES}
_EMS_BY_CODE = {m.code: m for m in EMS_MODES}


def eco_groups(regs: Mapping[int, int], eco_v2: bool) -> list[EcoGroup]:
    if eco_v2:
        return [decode_eco_v2([regs[47547 + 6 * n + i] for i in range(6)]) for n in range(4)]
    return [decode_eco_v1([regs[47515 + 4 * n + i] for i in range(4)]) for n in range(4)]


def firmware_behaviour(regs: Mapping[int, int], local: datetime, rated_w: float, eco_v2: bool) -> Behaviour:
    """The battery behaviour the inverter's settings registers ask for at inverter-local time ``local``."""
    limits = {
        "floor_soc": float(regs[45356]),
        "export_limit_w": float(regs[47510]) if regs[47509] else math.inf,
    }
    ems = _EMS_BY_CODE.get(regs[47511], EMS_MODES[0])
    if ems.mode != "work_mode":
        power = float(regs[47512]) if ems.uses_power else 0.0
        if ems.mode == "charge" and power == 0:
            return Behaviour("hold", source=f"ems {ems.name}", **limits)  # PV only: the model's hold
        target = 100.0 if ems.mode == "charge" else None
        return Behaviour(ems.mode, power, target, source=f"ems {ems.name}", **limits)
    work = _WORK_BY_CODE.get(regs[47000], WORK_MODES[0])
    if work.mode == "charge":
        return Behaviour("charge", rated_w, 100.0, source=f"work_mode {work.name}", **limits)
    if work.mode != "eco":
        return Behaviour(work.mode, source=f"work_mode {work.name}", **limits)
    for n, group in enumerate(eco_groups(regs, eco_v2), start=1):
        if not group.active_at(local):
            continue
        power = abs(group.power_pct) / 100.0 * rated_w
        if group.power_pct < 0:
            return Behaviour("charge", power, float(group.soc_pct), source=f"eco group {n}", **limits)
        if group.power_pct > 0:
            return Behaviour("discharge", power, None, source=f"eco group {n}", **limits)
        # 0 % in a group: the inverter neither charges nor discharges
        return Behaviour("standby", source=f"eco group {n}", **limits)
    return Behaviour("self_use", source="eco (no active group)", **limits)


@dataclass
class EnergyCounters:
    """Energy through the site, kWh (PV after curtailment; battery on its AC side)."""

    pv_kwh: float = 0.0
    load_kwh: float = 0.0
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    charge_kwh: float = 0.0
    discharge_kwh: float = 0.0

    def add(self, r: IntervalResult, load_w: float, dt_h: float) -> None:
        self.pv_kwh += r.pv_used_w * dt_h / 1000.0
        self.load_kwh += load_w * dt_h / 1000.0
        self.import_kwh += r.import_kwh
        self.export_kwh += r.export_kwh
        self.charge_kwh += r.charge_kwh
        self.discharge_kwh += r.discharge_kwh

    def copy(self) -> EnergyCounters:
        return replace(self)


@dataclass(frozen=True, slots=True)
class EmulatedSiteState:
    """The site at one instant (powers of the last physics step)."""

    time: datetime
    pv_w: float
    load_w: float
    grid_w: float  # + import / - export
    battery_w: float  # + discharge / - charge
    soc_pct: float
    grid_v: tuple[float, ...]
    grid_hz: float
    behaviour: Behaviour


@dataclass
class EmulatedSite:
    config: EmulatedSiteConfig
    pv: Profile
    load: Profile
    start: datetime
    counters: EnergyCounters = field(default_factory=EnergyCounters)
    day_counters: EnergyCounters = field(default_factory=EnergyCounters)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError(f"site start must be timezone-aware, got {self.start!r}")
        self.e_kwh = self.config.battery.energy_kwh(self.config.initial_soc_pct)
        self.time = self.start
        self._day = self._local_day(self.start)
        self.state = self._state(self.start, 0.0, 0.0, 0.0, 0.0, Behaviour("self_use"))

    def _local_day(self, t: datetime) -> tuple[int, int, int]:
        local = t.astimezone(self.config.tz)
        return local.year, local.month, local.day

    def local_time(self, t: datetime) -> datetime:
        return t.astimezone(self.config.tz)

    def set_soc(self, soc_pct: float) -> None:
        if not 0 <= soc_pct <= 100:
            raise ValueError(f"soc_pct must be within 0..100, got {soc_pct!r}")
        self.e_kwh = self.config.battery.energy_kwh(soc_pct)

    def advance(self, now: datetime, behaviour_at: Callable[[datetime], Behaviour]) -> None:
        """Step the physics from the last instant to ``now`` (a clock moved back is followed, not replayed)."""
        if now <= self.time:
            self.time = now
            return
        cfg = self.config
        t = self.time
        while t < now:
            dt = min(timedelta(seconds=cfg.max_step_s), now - t)
            dt_h = dt.total_seconds() / 3600.0
            b = behaviour_at(t)
            pv_w, load_w = max(0.0, self.pv(t)), max(0.0, self.load(t))
            floor = min(max(cfg.battery.min_soc_pct, b.floor_soc), cfg.battery.max_soc_pct - 0.01)
            params = replace(cfg.battery, min_soc_pct=floor)
            if b.mode == "standby":
                request = 0.0
            else:
                request = mode_request_w(b.mode, params, self.e_kwh, pv_w, load_w, b.power_w, b.target_soc)
            r = step(
                params, self.e_kwh, request, pv_w, load_w, dt_h, GridLimits(max_export_w=b.export_limit_w)
            )
            day = self._local_day(t)
            if day != self._day:
                self._day, self.day_counters = day, EnergyCounters()
            self.counters.add(r, load_w, dt_h)
            self.day_counters.add(r, load_w, dt_h)
            self.e_kwh = r.e_kwh
            t += dt
            self.state = self._state(t, r.pv_used_w, load_w, r.grid_w, r.battery_w, b)
        self.time = now

    def _state(
        self, t: datetime, pv_w: float, load_w: float, grid_w: float, battery_w: float, b: Behaviour
    ) -> EmulatedSiteState:
        cfg = self.config
        per_phase_export = -grid_w / cfg.phases
        volts = cfg.nominal_v + cfg.grid_impedance_ohm * per_phase_export / cfg.nominal_v
        return EmulatedSiteState(
            t,
            pv_w,
            load_w,
            grid_w,
            battery_w,
            cfg.battery.soc_pct(self.e_kwh),
            (volts,) * cfg.phases,
            cfg.grid_hz,
            b,
        )


def _battery_mode_code(battery_w: float) -> int:
    if battery_w > 0.5:
        return 2  # discharge
    if battery_w < -0.5:
        return 3  # charge
    return 1  # standby


def inverter_values(site: EmulatedSite) -> dict[str, float | str | datetime]:
    """The site's state as the inverter's runtime, meter and battery sensors (goodwe sensor ids)."""
    s, cfg, total, day = site.state, site.config, site.counters, site.day_counters
    phases = cfg.phases
    ppv1 = round(s.pv_w / 2)
    ppv2 = round(s.pv_w) - ppv1
    inverter_w = s.pv_w + s.battery_w  # AC output of the inverter, + feeding the house/grid
    export_w = -s.grid_w
    v_bat = 360.0 + 0.8 * s.soc_pct
    temp = 25.0 + 0.002 * abs(inverter_w)
    values: dict[str, float | str | datetime] = {
        "timestamp": site.local_time(s.time).replace(tzinfo=None, microsecond=0),
        "vpv1": 350.0 if ppv1 else 0.0,
        "ipv1": ppv1 / 350.0,
        "ppv1": ppv1,
        "vpv2": 345.0 if ppv2 else 0.0,
        "ipv2": ppv2 / 345.0,
        "ppv2": ppv2,
        "pv1_mode": 2 if ppv1 else 1,
        "pv2_mode": 2 if ppv2 else 1,
        "grid_mode": 1,
        "total_inverter_power": inverter_w,
        "active_power": export_w,
        "reactive_power": 0,
        "apparent_power": abs(inverter_w),
        "load_ptotal": s.load_w,
        "backup_ptotal": 0,
        "ups_load": 0,
        "temperature_air": temp - 5.0,
        "temperature_module": temp,
        "temperature": temp,
        "bus_voltage": 800.0,
        "nbus_voltage": 400.0,
        "vbattery1": v_bat,
        "ibattery1": s.battery_w / v_bat,
        "pbattery1": s.battery_w,
        "battery_mode": _battery_mode_code(s.battery_w),
        "warning_code": 0,
        "safety_country": 32,
        "work_mode": 1,
        "operation_mode": 0,
        "error_codes": 0,
        "e_total": total.pv_kwh,
        "e_day": day.pv_kwh,
        "e_total_exp": total.export_kwh,
        "e_day_exp": day.export_kwh,
        "e_total_imp": total.import_kwh,
        "e_day_imp": day.import_kwh,
        "e_load_total": total.load_kwh,
        "e_load_day": day.load_kwh,
        "e_bat_charge_total": total.charge_kwh,
        "e_bat_charge_day": day.charge_kwh,
        "e_bat_discharge_total": total.discharge_kwh,
        "e_bat_discharge_day": day.discharge_kwh,
        "h_total": int((s.time - site.start).total_seconds() // 3600),
        "diagnose_result": 0,
        # meter at the grid connection point
        "commode": 1,
        "rssi": 30,
        "manufacture_code": 10,
        "meter_test_status": 1,
        "meter_comm_status": 1,
        "active_power_total": export_w,
        "reactive_power_total": 0,
        "meter_power_factor": 1.0,
        "meter_freq": s.grid_hz,
        "meter_e_total_exp": total.export_kwh,
        "meter_e_total_imp": total.import_kwh,
        "meter_active_power_total": export_w,
        "meter_reactive_power_total": 0,
        "meter_apparent_power_total": abs(export_w),
        "meter_type": 2 if phases == 3 else 0,
        "meter_sw_version": 16,
        # battery (BMS)
        "battery_bms": 255,
        "battery_index": 256,
        "battery_status": 1,
        "battery_temperature": 25.0,
        "battery_charge_limit": round(cfg.battery.max_charge_w / v_bat),
        "battery_discharge_limit": round(cfg.battery.max_discharge_w / v_bat),
        "battery_soc": round(s.soc_pct),
        "battery_soh": 100,
        "battery_modules": 4,
        "battery_protocol": 257,
        "battery_max_cell_temp": 26.0,
        "battery_min_cell_temp": 24.0,
        "battery_max_cell_voltage": 3.35,
        "battery_min_cell_voltage": 3.32,
    }
    for n in range(1, phases + 1):
        suffix = "" if n == 1 else str(n)
        v = s.grid_v[n - 1]
        values |= {
            f"vgrid{suffix}": v,
            f"igrid{suffix}": abs(inverter_w) / phases / v,
            f"fgrid{suffix}": s.grid_hz,
            f"pgrid{suffix}": inverter_w / phases,
            f"backup_v{n}": v,
            f"backup_i{n}": 0.0,
            f"backup_f{n}": s.grid_hz,
            f"load_mode{n}": 1,
            f"backup_p{n}": 0,
            f"load_p{n}": s.load_w / phases,
            f"active_power{n}": export_w / phases,
            f"meter_active_power{n}": export_w / phases,
            f"meter_power_factor{n}": 1.0,
            f"meter_apparent_power{n}": abs(export_w) / phases,
        }
    return values
