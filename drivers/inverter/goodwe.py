"""GoodWe ET/EH/BT/BH hybrid inverter driver on the goodwe library.

The connection is what ``goodwe.connect(host, port, family="ET")`` builds (an ``ET`` instance and
its ``read_device_info()``), through a small subclass so that the transport can be chosen
independent of the port (UDP AA55/Modbus-RTU on 8899 by default, Modbus TCP otherwise, either on
any port) and so that every Modbus write request is counted.

Boundary: ``read``, ``apply``, ``info``, ``current_command`` raise nothing but
:class:`InverterError`. ``read`` serves the last good snapshot while reads fail and flags it
stale after ``stale_after_failures`` consecutive failures; it raises only when it has never read
one. After that many failures the connection is dropped and rebuilt with exponential backoff.
``apply`` writes only settings that differ from what it reads from the inverter, reads them back
and reports mismatches; writes per day are capped (returning to self-use is always allowed).

``eco_window_min`` (off by default) makes charge, discharge, hold and idle self-expiring (hold
and idle then as the 0 % group, not the EMS modes, which have no end): eco group 1 covers only
the next ``eco_window_min`` minutes of the inverter's own clock (learnt from the timestamp in its
runtime data) and is written again while the daemon runs (``renew_due`` tells the caller when),
so that an inverter left alone by a crashed daemon returns to self-use by itself. A constant forced mode then costs one extra write per ``eco_window_min / 2``, at most
``2880 / eco_window_min`` a day (96 for 30 min); at the write cap the group is not renewed and
the inverter falls back to self-use, which is the safe direction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal

from goodwe.et import ET
from goodwe.inverter import OperationMode
from goodwe.model import is_745_platform
from goodwe.protocol import (
    ModbusRtuWriteCommand,
    ModbusRtuWriteMultiCommand,
    ModbusTcpWriteCommand,
    ModbusTcpWriteMultiCommand,
    TcpInverterProtocol,
    UdpInverterProtocol,
)
from goodwe.sensor import ScheduleType

from drivers.backoff import Backoff
from drivers.inverter.goodwe_mapping import (
    WORK_ECO,
    EcoSlot,
    EtSettings,
    Policy,
    Step,
    StepKind,
    command_from_settings,
    minute_of_day,
    mismatches,
    mode_label,
    plan,
    snapshot_from_runtime,
    target_for,
)
from drivers.inverter.types import Applied, Command, CommandKind, InverterError, InverterInfo, Snapshot

log = logging.getLogger(__name__)

ET_FAMILY = ("ET", "EH", "BT", "BH")
SOC_STEP_PCT = 5.0  # a SoC reading may differ this much from the last good one at once
SOC_RATE_PCT_PER_MIN = 10.0  # and this much more per minute between them (a battery at 6C)
GOODWE_UDP_PORT = 8899
_WRITE_COMMANDS = (
    ModbusRtuWriteCommand,
    ModbusRtuWriteMultiCommand,
    ModbusTcpWriteCommand,
    ModbusTcpWriteMultiCommand,
)


class _CountingEt(ET):  # type: ignore[misc]  # goodwe ships no type information
    """``goodwe.et.ET`` counting the write requests it sends."""

    def __init__(self, host: str, port: int, comm_addr: int, timeout: float, retries: int) -> None:
        super().__init__(host, port, comm_addr, timeout, retries)
        self.write_requests = 0

    async def _read_from_socket(self, command: Any) -> Any:
        if isinstance(command, _WRITE_COMMANDS):
            self.write_requests += 1
        return await super()._read_from_socket(command)


class _UdpEt(_CountingEt):
    @staticmethod
    def _create_protocol(host: str, port: int, comm_addr: int, timeout: float, retries: int) -> Any:
        return UdpInverterProtocol(host, port, comm_addr, timeout, retries)


class _TcpEt(_CountingEt):
    @staticmethod
    def _create_protocol(host: str, port: int, comm_addr: int, timeout: float, retries: int) -> Any:
        return TcpInverterProtocol(host, port, comm_addr, timeout, retries)


@dataclass(frozen=True, slots=True)
class GoodWeConfig:
    host: str
    port: int = GOODWE_UDP_PORT
    family: str = "ET"
    protocol: Literal["udp", "tcp"] | None = None  # None: UDP on 8899, Modbus TCP on any other port
    comm_addr: int = 0  # 0 = the family's default (0xF7)
    timeout_s: float = 1.0  # per request
    retries: int = 3  # per request
    operation_timeout_s: float | None = None  # whole read/apply; None = from timeout and retries
    stale_after_failures: int = 3
    apply_attempts: int = 2  # apply is diff-based: a repeated attempt writes only what is still missing
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 300.0
    max_writes_per_day: int = 300
    write_day_tz: tzinfo = UTC  # the day over which writes are counted
    base_export_limit_w: int | None = None  # export limit without curtailment; None = rated power
    base_min_soc: float = 10.0  # DoD floor when a Command gives none
    max_dod_pct: int = 89  # the ET ignores a DoD above 89 %
    hold_via: Literal["ems", "eco"] = "ems"  # hold by EMS charge_pv at 0 W, or by an eco group at 0 %
    battery_capacity_kwh: float | None = None  # reported by info(); the ET does not tell it
    eco_window_min: int | None = None  # eco groups expire this long after each write; None = all day

    def __post_init__(self) -> None:
        checks = (
            ("host", bool(self.host)),
            ("port", 0 < self.port <= 65535),
            ("family", self.family.upper() in ET_FAMILY),
            ("protocol", self.protocol in (None, "udp", "tcp")),
            ("comm_addr", 0 <= self.comm_addr <= 255),
            ("timeout_s", self.timeout_s > 0),
            ("retries", 0 <= self.retries <= 10),
            ("operation_timeout_s", self.operation_timeout_s is None or self.operation_timeout_s > 0),
            ("stale_after_failures", self.stale_after_failures >= 1),
            ("apply_attempts", 1 <= self.apply_attempts <= 5),
            ("backoff_initial_s", self.backoff_initial_s >= 0),
            ("backoff_max_s", self.backoff_max_s >= self.backoff_initial_s),
            ("max_writes_per_day", self.max_writes_per_day >= 0),
            (
                "base_export_limit_w",
                self.base_export_limit_w is None or 0 <= self.base_export_limit_w <= 65535,
            ),
            ("base_min_soc", 0 <= self.base_min_soc <= 100),
            ("max_dod_pct", 0 <= self.max_dod_pct <= 100),
            ("hold_via", self.hold_via in ("ems", "eco")),
            ("battery_capacity_kwh", self.battery_capacity_kwh is None or self.battery_capacity_kwh > 0),
            ("eco_window_min", self.eco_window_min is None or 10 <= self.eco_window_min <= 720),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"inverter.{name}: invalid value {getattr(self, name)!r}")

    @property
    def transport(self) -> str:
        return self.protocol or ("udp" if self.port == GOODWE_UDP_PORT else "tcp")

    @property
    def request_budget_s(self) -> float:
        if self.operation_timeout_s is not None:
            return self.operation_timeout_s
        # the longest operation (apply: ~10 reads and ~8 writes), each with its retries
        return self.timeout_s * (self.retries + 1) * 20 + 1.0


class _WriteBudget:
    def __init__(self, cap: int, tz: tzinfo, now: Callable[[], datetime]) -> None:
        self.cap, self._tz, self._now = cap, tz, now
        self._day: date | None = None
        self._count = 0

    def _roll(self) -> None:
        day = self._now().astimezone(self._tz).date()
        if day != self._day:
            self._day, self._count = day, 0

    @property
    def used(self) -> int:
        self._roll()
        return self._count

    def allows(self, writes: int) -> bool:
        return self.used + writes <= self.cap

    def spend(self, writes: int) -> None:
        self._roll()
        self._count += writes

    @property
    def day(self) -> date:
        self._roll()
        assert self._day is not None
        return self._day

    def resume(self, day: date, writes: int) -> None:
        if day == self.day:
            self._count = max(self._count, writes)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GoodWeDriver:
    """The :class:`~drivers.inverter.types.Inverter` protocol for a GoodWe ET-family inverter."""

    def __init__(
        self,
        config: GoodWeConfig,
        *,
        now: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._now = now
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._inv: _CountingEt | None = None
        self._eco_v2 = True
        self._ems_supported: bool | None = None
        self._settings: EtSettings | None = None
        self._last: Snapshot | None = None
        self._failures = 0
        self._last_error = ""
        self._last_success: datetime | None = None
        self._next_connect_at = 0.0
        self._backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self._drops = 0  # connections dropped since the last good read
        self._reconnects = 0
        self._budget = _WriteBudget(config.max_writes_per_day, config.write_day_tz, now)
        self._clock_offset: timedelta | None = None  # the inverter's local clock minus our UTC clock
        self._soc_jump: float | None = None  # a SoC refused as too far from the last; confirmed if repeated

    # ---- state visible to health / MQTT ------------------------------------------------------
    @property
    def writes_today(self) -> int:
        return self._budget.used

    @property
    def write_cap(self) -> int:
        return self._budget.cap

    def writes_spent(self) -> tuple[date, int]:
        return self._budget.day, self._budget.used

    def resume_writes(self, day: date, writes: int) -> None:
        self._budget.resume(day, writes)

    @property
    def stale(self) -> bool:
        return self._failures >= self.config.stale_after_failures

    @property
    def renew_due(self) -> bool:
        """A self-expiring eco group is in force and should be written again now (apply the command again)."""
        s, window = self._settings, self.config.eco_window_min
        if window is None or s is None or s.eco is None or s.work_mode != WORK_ECO or s.eco.full_day:
            return False
        if not s.eco.on or not self._budget.allows(1):
            return False  # at the write cap the group runs out: the inverter returns to self-use
        now = minute_of_day(self._inverter_now())
        first, last = s.eco.window
        return not first <= now <= last or (last - now < window // 2 and last < 23 * 60 + 59)

    def _inverter_now(self) -> datetime:
        """The inverter's local clock (naive), from the offset learnt from its runtime timestamp."""
        now = self._now().astimezone(UTC)
        if self._clock_offset is None:
            return now.astimezone(self.config.write_day_tz).replace(tzinfo=None)
        return now.replace(tzinfo=None) + self._clock_offset

    def _learn_clock(self, data: Mapping[str, Any]) -> None:
        stamp = data.get("timestamp")
        if isinstance(stamp, datetime):
            self._clock_offset = stamp.replace(tzinfo=None) - self._now().astimezone(UTC).replace(tzinfo=None)

    @property
    def health(self) -> dict[str, Any]:
        return {
            "transport": self.config.transport,
            "address": f"{self.config.host}:{self.config.port}",
            "connected": self._inv is not None,
            "stale": self.stale,
            "consecutive_failures": self._failures,
            "last_error": self._last_error,
            "last_success": self._last_success.isoformat() if self._last_success else None,
            "reconnects": self._reconnects,
            "writes_today": self.writes_today,
            "write_cap": self.write_cap,
            "write_cap_reached": self.writes_today >= self.write_cap,
            "ems_supported": self._ems_supported,
            "mode": self._last.mode if self._last else "",
        }

    # ---- connection ----------------------------------------------------------------------------
    async def _connect(self) -> _CountingEt:
        if self._inv is not None:
            return self._inv
        cfg = self.config
        cls = _UdpEt if cfg.transport == "udp" else _TcpEt
        inv = cls(cfg.host, cfg.port, cfg.comm_addr, cfg.timeout_s, cfg.retries)
        await inv.read_device_info()
        self._eco_v2 = bool(inv._has_eco_mode_v2)
        try:
            await inv.read_setting("ems_mode")
            self._ems_supported = True
        except ValueError:  # the library's answer to "illegal data address": no EMS registers
            self._ems_supported = False
        self._inv = inv
        self._reconnects += 1
        self._settings = await self._read_settings(inv, with_groups=True)
        log.info("connected to GoodWe %s S/N %s over %s", inv.model_name, inv.serial_number, cfg.transport)
        return inv

    def _drop(self) -> None:
        self._inv = None
        self._drops += 1
        self._next_connect_at = self._monotonic() + self._backoff.delay_s(self._drops)

    def _policy(self, inv: _CountingEt) -> Policy:
        rated = int(inv.rated_power) or 10000
        cfg = self.config
        return Policy(
            rated_power_w=rated,
            base_export_limit_w=cfg.base_export_limit_w if cfg.base_export_limit_w is not None else rated,
            base_min_soc=cfg.base_min_soc,
            min_floor_soc=100 - cfg.max_dod_pct,
            ems_supported=bool(self._ems_supported),
            hold_via_ems=cfg.hold_via == "ems",
            eco_window_min=cfg.eco_window_min,
            inverter_now=self._inverter_now(),
        )

    async def _clock_known(self, inv: _CountingEt) -> None:
        """Learn the inverter's clock (one runtime read) when a window is to be written or judged."""
        if self._clock_offset is None:
            self._learn_clock(await inv.read_runtime_data())

    # ---- read ----------------------------------------------------------------------------------
    async def read(self) -> Snapshot:
        async with self._lock:
            try:
                async with asyncio.timeout(self.config.request_budget_s):
                    snapshot = await self._read_once()
            except Exception as exc:  # the boundary: anything the library or the socket raises
                return self._read_failed(exc)
            self._failures, self._last_error = 0, ""
            self._drops = 0
            self._last, self._last_success = snapshot, snapshot.time
            return snapshot

    async def _read_once(self) -> Snapshot:
        if self._inv is None and self._monotonic() < self._next_connect_at:
            raise InverterError(
                f"reconnect backoff: next attempt in {self._next_connect_at - self._monotonic():.1f} s"
            )
        inv = await self._connect()
        data = await inv.read_runtime_data()
        self._learn_clock(data)
        if not inv._has_battery:
            self._drop()  # the library stops reading the battery after a rejected read: start afresh
        mode = mode_label(self._settings, self._policy(inv))
        snapshot = snapshot_from_runtime(data, self._now(), mode, float(inv.rated_power or 0) or None)
        self._check_soc_step(snapshot)
        return snapshot

    def _check_soc_step(self, snapshot: Snapshot) -> None:
        """Refuse (once) a SoC further from the last good reading than a battery can move: an
        unset register reads as 0 % through the library. A second reading near the new value
        confirms it (a BMS that recalibrated its SoC)."""
        last = self._last
        if last is None:
            return
        minutes = max(0.0, (snapshot.time - last.time).total_seconds() / 60.0)
        allowed = SOC_STEP_PCT + SOC_RATE_PCT_PER_MIN * minutes
        jump, self._soc_jump = self._soc_jump, None
        if abs(snapshot.soc_pct - last.soc_pct) <= allowed:
            return
        if jump is not None and abs(snapshot.soc_pct - jump) <= SOC_STEP_PCT:
            log.warning("inverter SoC %.0f -> %.0f %% confirmed by a second reading", last.soc_pct, jump)
            return
        self._soc_jump = snapshot.soc_pct
        raise ValueError(
            f"goodwe runtime data: battery_soc {snapshot.soc_pct:.0f} % after {last.soc_pct:.0f} % "
            f"{minutes:.1f} min before (more than {allowed:.0f} %): taken for a damaged reading "
            "unless the next one confirms it"
        )

    def _read_failed(self, exc: Exception) -> Snapshot:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        log.warning("inverter read failed (%d in a row): %s", self._failures, self._last_error)
        if self.stale and self._inv is not None:
            self._drop()
        if self._last is None:
            raise InverterError(f"no inverter data yet: {self._last_error}") from exc
        return self._last.as_stale() if self.stale else self._last

    # ---- settings ------------------------------------------------------------------------------
    async def _read_settings(self, inv: _CountingEt, with_groups: bool) -> EtSettings:
        eco: EcoSlot | None = None
        others: tuple[bool, ...] | None = None
        if with_groups:
            try:
                eco = EcoSlot.from_sensor(await inv.read_setting("eco_mode_1"))
            except ValueError:  # a group the library cannot decode: it will be rewritten
                eco = None
            others = tuple([int(await inv.read_setting(f"eco_mode_{n}_switch")) != 0 for n in (2, 3, 4)])
        ems_mode = ems_power = None
        if self._ems_supported:
            ems_mode = int(await inv.read_setting("ems_mode"))
            ems_power = int(await inv.read_setting("ems_power_limit"))
        return EtSettings(
            work_mode=int(await inv.read_setting("work_mode")),
            eco=eco,
            other_groups_on=others,
            ems_mode=ems_mode,
            ems_power_w=ems_power,
            export_enabled=int(await inv.read_setting("grid_export")) != 0,
            export_limit_w=int(await inv.read_setting("grid_export_limit")),
            floor_soc=int(await inv.read_setting("battery_discharge_depth")),
        )

    async def _run_step(self, inv: _CountingEt, step: Step) -> None:
        if step.kind is StepKind.OPERATION_MODE:
            mode = OperationMode.ECO if step.value == WORK_ECO else OperationMode.GENERAL
            await inv.set_operation_mode(mode)
        elif step.kind is StepKind.ECO_GROUP:
            await inv.write_setting("eco_mode_1", self._eco_bytes(inv, step.value, step.soc, step.window))
        elif step.kind is StepKind.DOD:
            await inv.set_ongrid_battery_dod(100 - step.value)  # the register holds the SoC floor
        elif step.kind is StepKind.EXPORT_LIMIT:
            await inv.set_grid_export_limit(step.value)
        else:
            await inv.write_setting(step.setting, step.value)

    @staticmethod
    def _eco_bytes(
        inv: _CountingEt, power_pct: int, soc: int, window: tuple[int, int] | None = None
    ) -> bytes:
        """Group 1 "all day, every day" at ``power_pct`` (< 0 charge) by the library's own encoder;
        with ``window`` (first, last minute of the day) the group's first four bytes, start and
        end hour and minute, cover only that window (the same layout in v1 and v2 groups)."""
        sensor = inv._settings["eco_mode_1"]  # the library's sensor object, schedule type as last read
        sensor.set_schedule_type(ScheduleType.ECO_MODE, is_745_platform(inv))
        if power_pct < 0:
            encoded = bytes(sensor.encode_charge(-power_pct, soc))
        else:
            encoded = bytes(sensor.encode_discharge(power_pct))
        if window is None:
            return encoded
        (start_h, start_m), (end_h, end_m) = divmod(window[0], 60), divmod(window[1], 60)
        return bytes((start_h, start_m, end_h, end_m)) + encoded[4:]

    # ---- apply ---------------------------------------------------------------------------------
    async def apply(self, command: Command) -> Applied:
        async with self._lock:
            for attempt in range(1, self.config.apply_attempts + 1):
                try:
                    async with asyncio.timeout(self.config.request_budget_s):
                        return await self._apply_once(command)
                except Exception as exc:  # the boundary: anything the library or the socket raises
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "apply %s, attempt %d failed: %s", command.kind.value, attempt, self._last_error
                    )
                    if isinstance(exc, TimeoutError) and self._inv is not None:
                        self._drop()
                    if attempt == self.config.apply_attempts:
                        raise InverterError(f"apply {command.kind.value} failed: {self._last_error}") from exc
            raise InverterError(f"apply {command.kind.value}: no attempt made")  # apply_attempts >= 1

    async def _apply_once(self, command: Command) -> Applied:
        inv = await self._connect()
        if self.config.eco_window_min is not None:
            await self._clock_known(inv)
        policy = self._policy(inv)
        target = target_for(command, policy)
        with_groups = target.work_mode == WORK_ECO
        current = await self._read_settings(inv, with_groups)
        steps = plan(current, target, self._eco_v2)
        if not steps:
            self._settings = current
            return Applied(command, {}, current.as_dict(), writes_today=self.writes_today)
        needed = sum(s.writes for s in steps)
        if command.kind is not CommandKind.SELF_USE and not self._budget.allows(needed):
            log.warning("write cap %d/day reached: %s not applied", self.write_cap, command.kind.value)
            return Applied(command, {}, current.as_dict(), writes_today=self.writes_today, cap_reached=True)
        written: dict[str, int | float | str] = {}
        for step in steps:
            before = inv.write_requests
            try:
                await self._run_step(inv, step)
            finally:
                self._budget.spend(inv.write_requests - before)
            written[step.setting] = step.value
        after = await self._read_settings(inv, with_groups)
        self._settings = after
        wrong = mismatches(after, target, self._eco_v2)
        if wrong:
            log.warning("inverter read-back differs after %s: %s", command.kind.value, "; ".join(wrong))
        return Applied(command, written, after.as_dict(), wrong, writes_today=self.writes_today)

    async def safe_mode(self) -> Applied:
        """Return to the inverter's own self-use mode (always allowed, whatever the write cap)."""
        return await self.apply(Command.self_use())

    async def current_command(self) -> Command | None:
        """The Command the inverter's settings realise now (None: settings the driver never writes)."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.config.request_budget_s):
                    inv = await self._connect()
                    self._settings = await self._read_settings(inv, with_groups=True)
                    eco = self._settings.eco
                    if eco is not None and eco.on and not eco.full_day:
                        await self._clock_known(inv)  # whether a window is still running
                    return command_from_settings(self._settings, self._policy(inv))
            except Exception as exc:  # the boundary
                raise InverterError(f"reading inverter settings failed: {type(exc).__name__}: {exc}") from exc

    async def info(self) -> InverterInfo:
        async with self._lock:
            try:
                async with asyncio.timeout(self.config.request_budget_s):
                    inv = await self._connect()
            except Exception as exc:  # the boundary
                raise InverterError(f"inverter info failed: {type(exc).__name__}: {exc}") from exc
        return InverterInfo(
            model=str(inv.model_name),
            serial=str(inv.serial_number),
            firmware=f"{inv.firmware} / {inv.arm_firmware}",
            rated_power_w=float(inv.rated_power) if inv.rated_power else None,
            battery_capacity_kwh=self.config.battery_capacity_kwh,
        )

    async def close(self) -> None:
        self._inv = None
