"""GoodWe ET hybrid inverter emulator on pymodbus servers, driven by the project's physics.

Serves Modbus TCP and/or Modbus RTU over UDP with the ``AA 55`` reply prefix (the framing the
goodwe library speaks on port 8899), answers the register blocks the library reads on connect and
on ``read_runtime_data``, and accepts the setting writes. Behind the registers, a :class:`EmulatedSite`
steps PV, load, battery and grid to ``clock.now()`` on every request, so an accelerated clock runs
a simulated day in minutes. It counts writes per register, logs every write and every change of
the battery behaviour with its simulated time (the last ``LOG_KEEP`` of each), keeps energy counters, and can inject faults
(dropped, late, corrupted, truncated or exception replies, or settings accepted and then ignored).

Usage::

    async with GoodWeEmulator(clock=clock, tcp_port=0, udp_port=0) as emu:
        ...  # goodwe / the driver talk to 127.0.0.1:emu.tcp_port or emu.udp_port
        emu.counters.import_kwh, emu.writes_total, emu.mode_log
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer, ModbusUdpServer
from pymodbus.server.base import ModbusBaseServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from controller.clock import Clock, SystemClock
from controller.sim.emulator import registers as regs
from controller.sim.emulator.site import (
    Behaviour,
    EmulatedSite,
    EmulatedSiteConfig,
    EmulatedSiteState,
    EnergyCounters,
    Profile,
    firmware_behaviour,
    household_profile,
    inverter_values,
    solar_profile,
)

AA55 = b"\xaa\x55"
_WRITE_CODES = (0x06, 0x10)
LOG_KEEP = 1000  # writes and behaviour changes kept in the logs (a week or more of a daemon's)


@dataclass
class Faults:
    """Fault injection, each a share (0..1) of replies; change at any time (``emulator.faults``)."""

    drop_ratio: float = 0.0  # no reply at all
    late_ratio: float = 0.0  # reply after ``late_s`` real seconds
    late_s: float = 0.0
    bad_crc_ratio: float = 0.0  # UDP: CRC bytes flipped (TCP has no CRC)
    short_frame_ratio: float = 0.0  # reply cut to half its length
    exception_ratio: float = 0.0  # Modbus exception reply with ``exception_code``
    exception_code: int = int(ExcCodes.DEVICE_FAILURE)
    addresses: tuple[int, ...] = ()  # late/exception only for requests starting here (empty: all)
    # the firmware accepts and reports every setting but the battery stays in self-use (above
    # the configured floor): an inverter that does not do what it is told
    ignore_commands: bool = False
    # the battery charges at this power (from the grid where PV falls short) whatever the settings
    # say: a firmware stuck in a forced charge that reports self-use
    stuck_charge_w: float = 0.0
    # read-only registers stuck at these words (address -> word) whatever the site does: an unset
    # register (0xFFFF), a saturated one (0x8000), a frame the firmware filled wrongly
    stuck: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("drop_ratio", "late_ratio", "bad_crc_ratio", "short_frame_ratio", "exception_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"faults.{name} must be within 0..1, got {value!r}")
        if self.stuck_charge_w < 0:
            raise ValueError(f"faults.stuck_charge_w must be >= 0, got {self.stuck_charge_w!r}")
        if self.late_s < 0:
            raise ValueError(f"faults.late_s must be >= 0, got {self.late_s!r}")
        if self.exception_code not in {int(c) for c in ExcCodes}:
            raise ValueError(f"faults.exception_code is not a Modbus exception code: {self.exception_code!r}")
        for address, word in self.stuck.items():
            if not (0 <= address <= 0xFFFF and 0 <= word <= 0xFFFF):
                raise ValueError(
                    f"faults.stuck: register {address!r} = {word!r} is not a 16-bit address and word"
                )


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    serial_number: str = "9010KETU0HEMSD01"  # "ETU" marks the 205 platform for the goodwe library
    model_name: str = "GW10K-ET"
    firmware: str = "EMU-01.00.00"
    arm_firmware: str = "EMU-ARM-1.00"


@dataclass(frozen=True, slots=True)
class WriteRecord:
    time: datetime  # simulated time
    address: int
    values: tuple[int, ...]
    setting: str  # the goodwe setting id at ``address`` ("" if unnamed)


@dataclass(frozen=True, slots=True)
class ModeRecord:
    time: datetime  # simulated time the behaviour took effect
    behaviour: Behaviour


class _DroppingHandler(ServerRequestHandler):
    """Request handler that sends nothing for an empty packet (the tracer's way to drop a reply)."""

    def send(self, data: bytes, addr: tuple[Any, ...] | None = None) -> None:
        if data:
            super().send(data, addr)


class _TcpServer(ModbusTcpServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        return _DroppingHandler(  # type: ignore[no-untyped-call]
            self, self.trace_packet, self.trace_pdu, self.trace_connect
        )


class _UdpServer(ModbusUdpServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        return _DroppingHandler(  # type: ignore[no-untyped-call]
            self, self.trace_packet, self.trace_pdu, self.trace_connect
        )


@dataclass
class _Stats:
    register_writes: Counter[int] = field(default_factory=Counter)
    setting_writes: Counter[str] = field(default_factory=Counter)
    write_log: deque[WriteRecord] = field(default_factory=lambda: deque(maxlen=LOG_KEEP))
    mode_log: deque[ModeRecord] = field(default_factory=lambda: deque(maxlen=LOG_KEEP))
    writes: int = 0
    requests: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)


class GoodWeEmulator:
    """A GoodWe ET inverter with a battery, PV and a house behind it, on loopback sockets.

    ``tcp_port`` / ``udp_port``: None = not served, 0 = a free port (read the bound one from the
    properties after ``start()``). ``eco_mode_v2`` False emulates older firmware (eco groups at
    47515, no SoC in groups).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        tcp_port: int | None = 0,
        udp_port: int | None = None,
        site: EmulatedSiteConfig | None = None,
        pv: Profile | None = None,
        load: Profile | None = None,
        identity: DeviceIdentity | None = None,
        eco_mode_v2: bool = True,
        faults: Faults | None = None,
        seed: int = 0,
    ) -> None:
        if tcp_port is None and udp_port is None:
            raise ValueError("emulator: at least one of tcp_port, udp_port is required")
        for name, port in (("tcp_port", tcp_port), ("udp_port", udp_port)):
            if port is not None and not 0 <= port <= 65535:
                raise ValueError(f"emulator.{name} must be within 0..65535, got {port!r}")
        self.clock: Clock = clock or SystemClock()
        self.host = host
        self.config = site or EmulatedSiteConfig()
        self.identity = identity or DeviceIdentity()
        self.eco_mode_v2 = eco_mode_v2
        self.faults = faults or Faults()
        self._requested_ports = (tcp_port, udp_port)
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
        self.site = EmulatedSite(
            self.config,
            pv or solar_profile(tz=self.config.tz),
            load or household_profile(tz=self.config.tz),
            self.clock.now(),
        )
        self.settings: dict[int, int] = regs.default_settings(
            self.config.rated_power_w, self.config.floor_soc_pct
        )
        self._stats = _Stats()
        self._encoded_blocks: dict[str, tuple[tuple[str, ...], dict[int, int]]] = {}
        self._behaviour = self._firmware(self.site.time)
        self._stats.mode_log.append(ModeRecord(self.site.time, self._behaviour))
        self._tcp: _TcpServer | None = None
        self._udp: _UdpServer | None = None
        self._ports: dict[str, int] = {}

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        tcp_port, udp_port = self._requested_ports
        if tcp_port is not None:
            self._tcp = _TcpServer(
                self._device(), address=(self.host, tcp_port), trace_packet=self._trace_tcp
            )
            await self._tcp.serve_forever(background=True)
            self._ports["tcp"] = self._bound_port(self._tcp)
        if udp_port is not None:
            self._udp = _UdpServer(
                self._device(),
                framer=FramerType.RTU,
                address=(self.host, udp_port),
                trace_packet=self._trace_udp,
            )
            await self._udp.serve_forever(background=True)
            self._ports["udp"] = self._bound_port(self._udp)

    async def stop(self) -> None:
        for server in (self._tcp, self._udp):
            if server is not None:
                await server.shutdown()  # type: ignore[no-untyped-call]
        self._tcp = self._udp = None

    async def __aenter__(self) -> GoodWeEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    def _bound_port(server: ModbusBaseServer) -> int:
        transport: Any = server.transport
        if hasattr(transport, "sockets"):
            return int(transport.sockets[0].getsockname()[1])
        return int(transport.get_extra_info("sockname")[1])

    @property
    def ports(self) -> dict[str, int]:
        """Bound ports by transport ("tcp", "udp") of the running servers."""
        return dict(self._ports)

    @property
    def tcp_port(self) -> int:
        if "tcp" not in self._ports:
            raise RuntimeError("emulator: Modbus TCP is not being served (start() first, tcp_port set)")
        return self._ports["tcp"]

    @property
    def udp_port(self) -> int:
        if "udp" not in self._ports:
            raise RuntimeError("emulator: UDP is not being served (start() first, udp_port set)")
        return self._ports["udp"]

    # ---- observation -----------------------------------------------------------------------
    @property
    def state(self) -> EmulatedSiteState:
        return self.site.state

    @property
    def behaviour(self) -> Behaviour:
        return self._behaviour

    @property
    def counters(self) -> EnergyCounters:
        """Lifetime energy totals, kWh (a copy)."""
        return self.site.counters.copy()

    @property
    def write_log(self) -> list[WriteRecord]:
        """The last ``LOG_KEEP`` writes, oldest first."""
        return list(self._stats.write_log)

    @property
    def mode_log(self) -> list[ModeRecord]:
        """The last ``LOG_KEEP`` behaviour changes, oldest first."""
        return list(self._stats.mode_log)

    @property
    def writes_total(self) -> int:
        """Write requests accepted (a multi-register write counts once)."""
        return self._stats.writes

    @property
    def register_writes(self) -> Counter[int]:
        """Times each register address was written."""
        return Counter(self._stats.register_writes)

    @property
    def setting_writes(self) -> Counter[str]:
        """Write requests per goodwe setting id."""
        return Counter(self._stats.setting_writes)

    @property
    def requests(self) -> int:
        return self._stats.requests

    @property
    def faults_injected(self) -> Counter[str]:
        return Counter(self._stats.faults_injected)

    def advance(self) -> EmulatedSiteState:
        """Step the physics to ``clock.now()`` (requests do this too)."""
        self.site.advance(self.clock.now(), self._behaviour_at)
        return self.site.state

    def set_soc(self, soc_pct: float) -> None:
        self.advance()
        self.site.set_soc(soc_pct)

    def set_profiles(self, pv: Profile | None = None, load: Profile | None = None) -> None:
        self.advance()
        if pv is not None:
            self.site.pv = pv
        if load is not None:
            self.site.load = load

    # ---- firmware ----------------------------------------------------------------------------
    def _firmware(self, t: datetime) -> Behaviour:
        return firmware_behaviour(
            self.settings, self.site.local_time(t), self.config.rated_power_w, self.eco_mode_v2
        )

    def _behaviour_at(self, t: datetime) -> Behaviour:
        b = self._firmware(t)
        if self.faults.ignore_commands:
            b = Behaviour("self_use", floor_soc=b.floor_soc, source="ignoring its settings")
        if self.faults.stuck_charge_w:
            b = Behaviour(
                "charge", self.faults.stuck_charge_w, 100.0, b.floor_soc, source="stuck in a charge"
            )
        if b != self._behaviour:
            self._behaviour = b
            self._stats.mode_log.append(ModeRecord(t, b))
        return b

    # ---- registers ---------------------------------------------------------------------------
    def _blocks(self) -> list[regs.Block]:
        blocks = [
            *regs.READ_ONLY_BLOCKS,
            regs.BATTERY_SETTINGS,
            regs.WORK_MODE_SETTINGS,
            regs.ECO_V1_SETTINGS,
            regs.BATTERY_MODE_PARAM,
            regs.EXPORT_EMS_SETTINGS,
        ]
        if self.eco_mode_v2:
            blocks.append(regs.ECO_V2_SETTINGS)
        return blocks

    def _device(self) -> SimDevice:
        data = [
            SimData(b.address, count=b.count, values=0, datatype=DataType.REGISTERS, readonly=not b.writable)
            for b in self._blocks()
        ]
        return SimDevice(id=0, simdata=data, action=self._action)

    def _sensor_values(self) -> dict[str, float | str | datetime]:
        values: dict[str, float | str | datetime] = {
            "modbus_version": 2,
            "rated_power": self.config.rated_power_w,
            "ac_output_type": 1 if self.config.phases == 3 else 0,
            "serial_number": self.identity.serial_number,
            "model_name": self.identity.model_name,
            "dsp1_version": 10,
            "dsp2_version": 10,
            "dsp_svn_version": 1,
            "arm_version": 23,
            "arm_svn_version": 1,
            "firmware": self.identity.firmware,
            "arm_firmware": self.identity.arm_firmware,
        }
        return values | inverter_values(self.site)

    def _encoded(self, table: regs.BlockFields, values: dict[str, float | str | datetime]) -> dict[int, int]:
        """One block's registers, encoded again only when one of its fields' values has changed.

        A poll reads several blocks at one simulated instant and most fields hold still between
        polls. The key is each value's ``repr``: it tells 1 from 1.0 and 0.0 from -0.0, which
        encode differently as text and as floats.
        """
        key = tuple(repr(values.get(f.name)) for f in table.fields)
        cached = self._encoded_blocks.get(table.block.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        words = regs.encode_fields(table.fields, values)
        self._encoded_blocks[table.block.name] = (key, words)
        return words

    def _image(self, address: int, count: int) -> dict[int, int]:
        """Registers from ``address`` on for ``count`` words: the read-only blocks the range
        touches, under the stuck registers and the settings."""
        touched = [
            t for t in regs.READ_ONLY_FIELDS if t.block.address < address + count and address < t.block.end
        ]
        image: dict[int, int] = {}
        if touched:
            values = self._sensor_values()
            for table in touched:
                image |= self._encoded(table, values)
        return image | self.faults.stuck | self.settings

    def registers(self, address: int, count: int) -> list[int]:
        """Current register values as a client would read them (advances the physics first)."""
        self.advance()
        image = self._image(address, count)
        return [image.get(a, 0) for a in range(address, address + count)]

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code in _WRITE_CODES and set_values is None:
            return None  # pymodbus reads the written register back to build the write's echo
        self._stats.requests += 1
        f = self.faults
        targeted = not f.addresses or address in f.addresses
        if targeted and f.exception_ratio and self._rng.random() < f.exception_ratio:
            self._stats.faults_injected["exception"] += 1
            return ExcCodes(f.exception_code)
        if targeted and f.late_ratio and self._rng.random() < f.late_ratio:
            self._stats.faults_injected["late"] += 1
            await asyncio.sleep(f.late_s)
        self.advance()
        if set_values is not None:
            return self._write(address, [int(v) for v in set_values])
        image = self._image(address, count)
        offset = address - start_address
        for i in range(count):
            registers[offset + i] = image.get(address + i, registers[offset + i])
        return None

    def _write(self, address: int, values: list[int]) -> ExcCodes | None:
        proposed = dict(self.settings)
        proposed.update(zip(range(address, address + len(values)), values, strict=True))
        try:
            self._validate(proposed)
        except ValueError:
            return ExcCodes.ILLEGAL_VALUE
        self.settings = proposed
        setting = regs.setting_at(address)
        name = setting.name if setting else ""
        self._stats.write_log.append(WriteRecord(self.site.time, address, tuple(values), name))
        self._stats.writes += 1
        self._stats.setting_writes[name] += 1
        for a in range(address, address + len(values)):
            self._stats.register_writes[a] += 1
        self._behaviour_at(self.site.time)
        return None

    def _validate(self, proposed: dict[int, int]) -> None:
        """Reject what the firmware would reject (values the behaviour cannot be decided from)."""
        if proposed[47000] > 5 or proposed[45356] > 100 or not 1 <= proposed.get(47511, 1) <= 12:
            raise ValueError("setting out of range")
        firmware_behaviour(
            proposed, self.site.local_time(self.site.time), self.config.rated_power_w, self.eco_mode_v2
        )

    # ---- packet-level faults -----------------------------------------------------------------
    def _packet_fault(self) -> str:
        f = self.faults
        for name, ratio in (
            ("drop", f.drop_ratio),
            ("bad_crc", f.bad_crc_ratio),
            ("short_frame", f.short_frame_ratio),
        ):
            if ratio and self._rng.random() < ratio:
                self._stats.faults_injected[name] += 1
                return name
        return ""

    def _trace_udp(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        fault = self._packet_fault()
        if fault == "drop":
            return b""
        if fault == "bad_crc":
            data = data[:-2] + bytes(b ^ 0xFF for b in data[-2:])
        elif fault == "short_frame":
            data = data[: len(data) // 2]
        return AA55 + data

    def _trace_tcp(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        fault = self._packet_fault()
        if fault == "drop":
            return b""
        if fault == "short_frame":
            return data[: len(data) // 2]
        return data
