"""Register map of the emulated GoodWe ET hybrid inverter (205 platform, e.g. GW10K-ET).

Addresses, widths, scales and signs follow the goodwe library's ET tables; a test checks them
against register dumps recorded from real inverters. Pure data and pure functions: the emulator
fills the read-only blocks from its physics and decodes the settings written to it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


class Kind(enum.Enum):
    U16 = 1
    S16 = 2
    U32 = 3
    S32 = 4
    F32 = 5
    BYTE_H = 6  # high byte of a shared register
    BYTE_L = 7  # low byte of a shared register
    TIME = 8  # 3 registers: year-2000, month, day, hour, minute, second (one byte each)
    TEXT = 9  # ASCII, ``words`` registers, space padded


_WORDS = {Kind.U32: 2, Kind.S32: 2, Kind.F32: 2, Kind.TIME: 3}


@dataclass(frozen=True, slots=True)
class Field:
    """One value: ``register = value * scale`` (TEXT: ``words`` registers of ASCII)."""

    name: str  # the goodwe library's sensor id
    address: int
    kind: Kind = Kind.U16
    scale: float = 1.0
    words: int = 0

    @property
    def size(self) -> int:
        return self.words or _WORDS.get(self.kind, 1)


@dataclass(frozen=True, slots=True)
class Block:
    name: str
    address: int
    count: int
    writable: bool

    @property
    def end(self) -> int:
        return self.address + self.count


def _u16(value: int) -> int:
    return value & 0xFFFF


def encode_fields(fields: tuple[Field, ...], values: Mapping[str, float | str | datetime]) -> dict[int, int]:
    """Registers (address -> 16-bit word) for the fields present in ``values``."""
    out: dict[int, int] = {}
    for f in fields:
        if f.name not in values:
            continue
        value = values[f.name]
        if f.kind is Kind.TEXT:
            raw = str(value).encode("ascii").ljust(2 * f.size, b" ")[: 2 * f.size]
            for i in range(f.size):
                out[f.address + i] = int.from_bytes(raw[2 * i : 2 * i + 2], "big")
            continue
        if f.kind is Kind.TIME:
            if not isinstance(value, datetime):
                raise TypeError(f"{f.name}: a datetime is required, got {value!r}")
            out[f.address] = ((value.year - 2000) << 8) | value.month
            out[f.address + 1] = (value.day << 8) | value.hour
            out[f.address + 2] = (value.minute << 8) | value.second
            continue
        if not isinstance(value, int | float):
            raise TypeError(f"{f.name}: a number is required, got {value!r}")
        if f.kind is Kind.F32:
            hi, lo = struct.unpack(">HH", struct.pack(">f", float(value) * f.scale))
            out[f.address], out[f.address + 1] = hi, lo
            continue
        raw_int = round(float(value) * f.scale)
        if f.kind in (Kind.BYTE_H, Kind.BYTE_L):
            shift = 8 if f.kind is Kind.BYTE_H else 0
            word = out.get(f.address, 0) & ~(0xFF << shift)
            out[f.address] = word | ((raw_int & 0xFF) << shift)
        elif f.kind in (Kind.U32, Kind.S32):
            raw32 = raw_int & 0xFFFFFFFF
            out[f.address], out[f.address + 1] = raw32 >> 16, raw32 & 0xFFFF
        else:
            out[f.address] = _u16(raw_int)
    return out


def decode_field(f: Field, registers: Mapping[int, int]) -> float | str:
    """Inverse of :func:`encode_fields` for one field (TIME decodes as ISO text)."""
    words = [registers[f.address + i] for i in range(f.size)]
    if f.kind is Kind.TEXT:
        return b"".join(w.to_bytes(2, "big") for w in words).decode("ascii").rstrip()
    if f.kind is Kind.TIME:
        b = b"".join(w.to_bytes(2, "big") for w in words)
        return f"{2000 + b[0]:04d}-{b[1]:02d}-{b[2]:02d}T{b[3]:02d}:{b[4]:02d}:{b[5]:02d}"
    if f.kind is Kind.F32:
        (value,) = struct.unpack(">f", struct.pack(">HH", words[0], words[1]))
        return float(value) / f.scale
    if f.kind in (Kind.BYTE_H, Kind.BYTE_L):
        raw = (words[0] >> 8) if f.kind is Kind.BYTE_H else (words[0] & 0xFF)
    elif f.kind in (Kind.U32, Kind.S32):
        raw = (words[0] << 16) | words[1]
        if f.kind is Kind.S32 and raw & 0x80000000:
            raw -= 1 << 32
    else:
        raw = words[0]
        if f.kind is Kind.S16 and raw & 0x8000:
            raw -= 1 << 16
    return raw / f.scale


def _phase(n: int, base: int) -> tuple[Field, ...]:
    """On-grid phase n (1..3): voltage, current, frequency, power at 5-register spacing."""
    suffix = "" if n == 1 else str(n)
    a = base + 5 * (n - 1)
    return (
        Field(f"vgrid{suffix}", a, Kind.U16, 10),
        Field(f"igrid{suffix}", a + 1, Kind.U16, 10),
        Field(f"fgrid{suffix}", a + 2, Kind.S16, 100),
        Field(f"pgrid{suffix}", a + 4, Kind.S16),
    )


def _backup(n: int) -> tuple[Field, ...]:
    a = 35145 + 6 * (n - 1)
    return (
        Field(f"backup_v{n}", a, Kind.U16, 10),
        Field(f"backup_i{n}", a + 1, Kind.U16, 10),
        Field(f"backup_f{n}", a + 2, Kind.S16, 100),
        Field(f"load_mode{n}", a + 3),
        Field(f"backup_p{n}", a + 5, Kind.S16),
    )


DEVICE_INFO_FIELDS: tuple[Field, ...] = (
    Field("modbus_version", 35000),
    Field("rated_power", 35001),
    Field("ac_output_type", 35002),
    Field("serial_number", 35003, Kind.TEXT, words=8),
    Field("model_name", 35011, Kind.TEXT, words=5),
    Field("dsp1_version", 35016),
    Field("dsp2_version", 35017),
    Field("dsp_svn_version", 35018),
    Field("arm_version", 35019),
    Field("arm_svn_version", 35020),
    Field("firmware", 35021, Kind.TEXT, words=6),
    Field("arm_firmware", 35027, Kind.TEXT, words=6),
)

RUNTIME_FIELDS: tuple[Field, ...] = (
    Field("timestamp", 35100, Kind.TIME),
    Field("vpv1", 35103, Kind.U16, 10),
    Field("ipv1", 35104, Kind.U16, 10),
    Field("ppv1", 35105, Kind.U32),
    Field("vpv2", 35107, Kind.U16, 10),
    Field("ipv2", 35108, Kind.U16, 10),
    Field("ppv2", 35109, Kind.U32),
    Field("pv2_mode", 35120, Kind.BYTE_H),
    Field("pv1_mode", 35120, Kind.BYTE_L),
    *_phase(1, 35121),
    *_phase(2, 35121),
    *_phase(3, 35121),
    Field("grid_mode", 35136),
    Field("total_inverter_power", 35138, Kind.S16),
    Field("active_power", 35140, Kind.S16),  # + export / - import
    Field("reactive_power", 35142, Kind.S16),
    Field("apparent_power", 35144, Kind.S16),
    *_backup(1),
    *_backup(2),
    *_backup(3),
    Field("load_p1", 35164, Kind.S16),
    Field("load_p2", 35166, Kind.S16),
    Field("load_p3", 35168, Kind.S16),
    Field("backup_ptotal", 35170, Kind.S16),
    Field("load_ptotal", 35172, Kind.S16),
    Field("ups_load", 35173),
    Field("temperature_air", 35174, Kind.S16, 10),
    Field("temperature_module", 35175, Kind.S16, 10),
    Field("temperature", 35176, Kind.S16, 10),
    Field("function_bit", 35177),
    Field("bus_voltage", 35178, Kind.U16, 10),
    Field("nbus_voltage", 35179, Kind.U16, 10),
    Field("vbattery1", 35180, Kind.U16, 10),
    Field("ibattery1", 35181, Kind.S16, 10),
    Field("pbattery1", 35182, Kind.S32),  # + discharge / - charge
    Field("battery_mode", 35184),
    Field("warning_code", 35185),
    Field("safety_country", 35186),
    Field("work_mode", 35187),
    Field("operation_mode", 35188),
    Field("error_codes", 35189, Kind.U32),
    Field("e_total", 35191, Kind.U32, 10),
    Field("e_day", 35193, Kind.U32, 10),
    Field("e_total_exp", 35195, Kind.U32, 10),
    Field("h_total", 35197, Kind.U32),
    Field("e_day_exp", 35199, Kind.U16, 10),
    Field("e_total_imp", 35200, Kind.U32, 10),
    Field("e_day_imp", 35202, Kind.U16, 10),
    Field("e_load_total", 35203, Kind.U32, 10),
    Field("e_load_day", 35205, Kind.U16, 10),
    Field("e_bat_charge_total", 35206, Kind.U32, 10),
    Field("e_bat_charge_day", 35208, Kind.U16, 10),
    Field("e_bat_discharge_total", 35209, Kind.U32, 10),
    Field("e_bat_discharge_day", 35211, Kind.U16, 10),
    Field("diagnose_result", 35220, Kind.U32),
)

METER_FIELDS: tuple[Field, ...] = (
    Field("commode", 36000),
    Field("rssi", 36001),
    Field("manufacture_code", 36002),
    Field("meter_test_status", 36003),
    Field("meter_comm_status", 36004),
    Field("active_power1", 36005, Kind.S16),
    Field("active_power2", 36006, Kind.S16),
    Field("active_power3", 36007, Kind.S16),
    Field("active_power_total", 36008, Kind.S16),
    Field("reactive_power_total", 36009, Kind.S16),
    Field("meter_power_factor1", 36010, Kind.S16, 1000),
    Field("meter_power_factor2", 36011, Kind.S16, 1000),
    Field("meter_power_factor3", 36012, Kind.S16, 1000),
    Field("meter_power_factor", 36013, Kind.S16, 1000),
    Field("meter_freq", 36014, Kind.S16, 100),
    Field("meter_e_total_exp", 36015, Kind.F32, 1000),  # float Wh
    Field("meter_e_total_imp", 36017, Kind.F32, 1000),
    Field("meter_active_power1", 36019, Kind.S32),
    Field("meter_active_power2", 36021, Kind.S32),
    Field("meter_active_power3", 36023, Kind.S32),
    Field("meter_active_power_total", 36025, Kind.S32),  # + export / - import
    Field("meter_reactive_power1", 36027, Kind.S32),
    Field("meter_reactive_power2", 36029, Kind.S32),
    Field("meter_reactive_power3", 36031, Kind.S32),
    Field("meter_reactive_power_total", 36033, Kind.S32),
    Field("meter_apparent_power1", 36035, Kind.S32),
    Field("meter_apparent_power2", 36037, Kind.S32),
    Field("meter_apparent_power3", 36039, Kind.S32),
    Field("meter_apparent_power_total", 36041, Kind.S32),
    Field("meter_type", 36043),
    Field("meter_sw_version", 36044),
)

BATTERY_FIELDS: tuple[Field, ...] = (
    Field("battery_bms", 37000),
    Field("battery_index", 37001),
    Field("battery_status", 37002),
    Field("battery_temperature", 37003, Kind.S16, 10),
    Field("battery_charge_limit", 37004),
    Field("battery_discharge_limit", 37005),
    Field("battery_error_l", 37006),
    Field("battery_soc", 37007),
    Field("battery_soh", 37008),
    Field("battery_modules", 37009),
    Field("battery_warning_l", 37010),
    Field("battery_protocol", 37011),
    Field("battery_error_h", 37012),
    Field("battery_warning_h", 37013),
    Field("battery_sw_version", 37014),
    Field("battery_hw_version", 37015),
    Field("battery_max_cell_temp_id", 37016),
    Field("battery_min_cell_temp_id", 37017),
    Field("battery_max_cell_voltage_id", 37018),
    Field("battery_min_cell_voltage_id", 37019),
    Field("battery_max_cell_temp", 37020, Kind.S16, 10),
    Field("battery_min_cell_temp", 37021, Kind.S16, 10),
    Field("battery_max_cell_voltage", 37022, Kind.U16, 1000),
    Field("battery_min_cell_voltage", 37023, Kind.U16, 1000),
)

DEVICE_INFO = Block("device_info", 35000, 33, writable=False)
RUNNING_DATA = Block("running_data", 35100, 125, writable=False)
METER_DATA = Block("meter_data", 36000, 45, writable=False)
BATTERY_INFO = Block("battery_info", 37000, 24, writable=False)
BATTERY_SETTINGS = Block("battery_settings", 45350, 9, writable=True)
WORK_MODE_SETTINGS = Block("work_mode", 47000, 1, writable=True)
EXPORT_EMS_SETTINGS = Block("export_and_ems", 47509, 4, writable=True)
ECO_V1_SETTINGS = Block("eco_mode_v1", 47515, 16, writable=True)
BATTERY_MODE_PARAM = Block("battery_mode_param", 47533, 1, writable=True)
ECO_V2_SETTINGS = Block("eco_mode_v2", 47545, 26, writable=True)

READ_ONLY_BLOCKS = (DEVICE_INFO, RUNNING_DATA, METER_DATA, BATTERY_INFO)


@dataclass(frozen=True, slots=True)
class BlockFields:
    """The fields that fill one read-only block (each lies wholly inside it)."""

    block: Block
    fields: tuple[Field, ...]


READ_ONLY_FIELDS: tuple[BlockFields, ...] = (
    BlockFields(DEVICE_INFO, DEVICE_INFO_FIELDS),
    BlockFields(RUNNING_DATA, RUNTIME_FIELDS),
    BlockFields(METER_DATA, METER_FIELDS),
    BlockFields(BATTERY_INFO, BATTERY_FIELDS),
)


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # the goodwe library's setting id
    address: int
    words: int = 1


SETTINGS: tuple[Setting, ...] = (
    Setting("battery_capacity", 45350),
    Setting("battery_modules", 45351),
    Setting("battery_charge_voltage", 45352),
    Setting("battery_charge_current", 45353),
    Setting("battery_discharge_voltage", 45354),
    Setting("battery_discharge_current", 45355),
    Setting("battery_discharge_depth", 45356),  # on-grid SoC floor, % (DoD = 100 - value)
    Setting("battery_discharge_voltage_offline", 45357),
    Setting("battery_discharge_depth_offline", 45358),
    Setting("work_mode", 47000),
    Setting("grid_export", 47509),
    Setting("grid_export_limit", 47510),
    Setting("ems_mode", 47511),
    Setting("ems_power_limit", 47512),
    *(Setting(f"eco_mode_v1_{n}", 47515 + 4 * (n - 1), 4) for n in range(1, 5)),
    Setting("battery_mode_param_clear", 47533),
    Setting("fast_charging", 47545),
    Setting("fast_charging_soc", 47546),
    *(Setting(f"eco_mode_{n}", 47547 + 6 * (n - 1), 6) for n in range(1, 5)),
)


def setting_at(address: int) -> Setting | None:
    for s in SETTINGS:
        if s.address <= address < s.address + s.words:
            return s
    return None


@dataclass(frozen=True, slots=True)
class EcoGroup:
    """One eco-mode time group as the firmware reads it. ``power_pct`` < 0 charges, > 0 discharges."""

    start_min: int  # minute of the day; the "unset" marker hour 48 gives >= 1440
    end_min: int
    enabled: bool
    day_bits: int  # bit 0 = Sunday .. bit 6 = Saturday
    power_pct: float
    soc_pct: int
    month_bits: int = 0  # 0 or 0x0FFF = every month

    def active_at(self, local: datetime) -> bool:
        if not self.enabled or self.start_min >= 1440 or self.end_min >= 1440:
            return False
        if not self.day_bits & (1 << ((local.weekday() + 1) % 7)):
            return False
        if self.month_bits not in (0, 0x0FFF) and not self.month_bits & (1 << (local.month - 1)):
            return False
        minute = local.hour * 60 + local.minute
        if self.start_min <= self.end_min:
            return self.start_min <= minute <= self.end_min
        return minute >= self.start_min or minute <= self.end_min


def _s8(byte: int) -> int:
    return byte - 256 if byte & 0x80 else byte


def _s16(word: int) -> int:
    return word - 65536 if word & 0x8000 else word


def decode_eco_v2(words: list[int]) -> EcoGroup:
    """12-byte group: start h/m, end h/m, on/off+type byte, day bits, power, SoC, month bits."""
    on_off = _s8(words[2] >> 8)
    # on_off -1 = eco mode on, -7 = eco mode on (745 platform, power in 0.1 %); >= 0 = off
    scale = 10.0 if on_off == -7 else 1.0
    return EcoGroup(
        start_min=(words[0] >> 8) * 60 + (words[0] & 0xFF),
        end_min=(words[1] >> 8) * 60 + (words[1] & 0xFF),
        enabled=on_off in (-1, -7),
        day_bits=words[2] & 0xFF,
        power_pct=_s16(words[3]) / scale,
        soc_pct=_s16(words[4]),
        month_bits=_s16(words[5]),
    )


def decode_eco_v1(words: list[int]) -> EcoGroup:
    """8-byte group: start h/m, end h/m, power, on/off byte, day bits (no SoC)."""
    return EcoGroup(
        start_min=(words[0] >> 8) * 60 + (words[0] & 0xFF),
        end_min=(words[1] >> 8) * 60 + (words[1] & 0xFF),
        enabled=_s8(words[3] >> 8) != 0,
        day_bits=words[3] & 0xFF,
        power_pct=float(_s16(words[2])),
        soc_pct=100,
    )


# An eco group that is switched off, as the goodwe library encodes "off".
ECO_V2_OFF = (0x3000, 0x3000, 0x0000, 100, 100, 0)
ECO_V1_OFF = (0x3000, 0x3000, 100, 0x0000)


def default_settings(rated_power_w: int, floor_soc_pct: int) -> dict[int, int]:
    """Settings registers as a freshly commissioned inverter has them (general mode, no limit)."""
    regs: dict[int, int] = {
        45350: 100,  # Ah
        45351: 1,
        45352: 5000,
        45353: 250,
        45354: 4400,
        45355: 250,
        45356: floor_soc_pct,
        45357: 4400,
        45358: floor_soc_pct,
        47000: 0,  # general (self-use)
        47509: 1,  # export limit enabled
        47510: rated_power_w,
        47511: 1,  # EMS auto
        47512: 0,
        47533: 0,
        47545: 0,
        47546: 100,
    }
    for n in range(4):
        regs.update(dict(zip(range(47515 + 4 * n, 47519 + 4 * n), ECO_V1_OFF, strict=True)))
        regs.update(dict(zip(range(47547 + 6 * n, 47553 + 6 * n), ECO_V2_OFF, strict=True)))
    return regs
