"""Values an inverter driver produces (Snapshot, InverterInfo, Applied) and accepts (Command).

Sign conventions, fixed here once for the whole project:
- ``grid_w``: + import from the grid, - export to the grid.
- ``battery_w``: + discharge (battery feeds the house/grid), - charge.
All instants are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from drivers import DriverError


class InverterError(DriverError):
    """The inverter could not be read or commanded."""


class CommandKind(enum.StrEnum):
    SELF_USE = "self_use"
    CHARGE = "charge"
    HOLD = "hold"
    DISCHARGE = "discharge"
    IDLE = "idle"  # the battery neither charges nor discharges: a PV surplus is exported


@dataclass(frozen=True, slots=True)
class Command:
    """What the controller wants the inverter to do now.

    ``power_w`` is the grid-charge power for CHARGE and the discharge power for DISCHARGE;
    ``target_soc`` is the SoC to charge up to (CHARGE) or the floor to discharge down to
    (DISCHARGE). ``export_limit_w`` (None = no limit) curtails export, e.g. at negative prices.
    ``min_soc`` is the depth-of-discharge floor that applies in every mode.
    """

    kind: CommandKind
    power_w: float = 0.0
    target_soc: float | None = None
    export_limit_w: float | None = None
    min_soc: float | None = None

    def __post_init__(self) -> None:
        if self.power_w < 0:
            raise ValueError(f"Command.power_w must be >= 0, got {self.power_w!r}")
        for name in ("target_soc", "min_soc"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 100.0:
                raise ValueError(f"Command.{name} must be within 0..100 %, got {value!r}")
        if self.export_limit_w is not None and self.export_limit_w < 0:
            raise ValueError(f"Command.export_limit_w must be >= 0, got {self.export_limit_w!r}")
        if self.kind in (CommandKind.CHARGE, CommandKind.DISCHARGE) and self.target_soc is None:
            raise ValueError(f"Command.target_soc is required for {self.kind.value}")

    @classmethod
    def self_use(cls) -> Command:
        return cls(CommandKind.SELF_USE)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One reading of the inverter. Powers in W, energies in kWh (lifetime counters)."""

    time: datetime
    pv_w: float
    load_w: float
    grid_w: float
    battery_w: float
    soc_pct: float
    grid_v: tuple[float, ...] = ()
    grid_hz: float | None = None
    temperatures: dict[str, float] = field(default_factory=dict)
    counters_kwh: dict[str, float] = field(default_factory=dict)
    mode: str = ""
    stale: bool = False

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError(f"Snapshot.time must be timezone-aware, got {self.time!r}")

    def as_stale(self) -> Snapshot:
        return Snapshot(
            time=self.time,
            pv_w=self.pv_w,
            load_w=self.load_w,
            grid_w=self.grid_w,
            battery_w=self.battery_w,
            soc_pct=self.soc_pct,
            grid_v=self.grid_v,
            grid_hz=self.grid_hz,
            temperatures=dict(self.temperatures),
            counters_kwh=dict(self.counters_kwh),
            mode=self.mode,
            stale=True,
        )

    def fields(self) -> dict[str, float]:
        """Flat numeric fields, the form storage and MQTT use."""
        out = {
            "pv_w": self.pv_w,
            "load_w": self.load_w,
            "grid_w": self.grid_w,
            "battery_w": self.battery_w,
            "soc_pct": self.soc_pct,
        }
        for i, volts in enumerate(self.grid_v, start=1):
            out[f"grid_v{i}"] = volts
        if self.grid_hz is not None:
            out["grid_hz"] = self.grid_hz
        for name, value in self.temperatures.items():
            out[f"temp_{name}_c"] = value
        for name, value in self.counters_kwh.items():
            out[f"{name}_kwh"] = value
        return {key: float(value) for key, value in out.items()}


@dataclass(frozen=True, slots=True)
class InverterInfo:
    model: str
    serial: str
    firmware: str
    rated_power_w: float | None = None
    battery_capacity_kwh: float | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """Result of ``Inverter.apply``: the settings written and what was read back afterwards."""

    command: Command
    written: dict[str, int | float | str]
    read_back: dict[str, int | float | str]
    mismatches: tuple[str, ...] = ()
    writes_today: int = 0
    cap_reached: bool = False

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.cap_reached


@runtime_checkable
class Inverter(Protocol):
    """The capability the controller needs from a hybrid inverter."""

    async def read(self) -> Snapshot: ...

    async def apply(self, command: Command) -> Applied: ...

    async def current_command(self) -> Command | None:
        """The Command the inverter's settings realise now (None: settings no Command describes)."""
        ...

    async def info(self) -> InverterInfo: ...

    async def close(self) -> None: ...

    @property
    def health(self) -> Mapping[str, object]:
        """The driver's own report: stale, last_error, writes_today, write_cap, and what else it knows."""
        ...

    def writes_spent(self) -> tuple[date, int]:
        """Settings written so far on the current write day (the day of the daily write cap)."""
        ...

    def resume_writes(self, day: date, writes: int) -> None:
        """Count ``writes`` already spent on ``day`` (the caller keeps them across restarts, so a
        restart loop cannot write past the daily cap)."""
        ...

    @property
    def renew_due(self) -> bool:
        """Settings that expire by themselves on the inverter should be written again now."""
        ...
