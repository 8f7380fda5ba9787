"""Energy and money per day, week or month from the stored history, against two replayed baselines.

Per period: PV produced, self-consumed (PV not exported), exported, imported, load, battery in and
out and cycles; the self-consumption ratio (self-consumed / PV) and autarky (1 - import / load);
the cost actually paid; what the same house would have paid with no battery and with plain
self-consumption, both replayed through the model on the recorded PV and load
(:func:`controller.sim.variants.self_use_flows`, the arithmetic of :func:`controller.physics.step`);
and the savings: of the battery (no battery - self-consumption) and of planning (self-consumption
- paid). The savings of planning assume the configured battery is the one installed.

History is read at 15-min resolution, the width of the price slots. The recorded energies are
integrated sample by sample by the rollups, so what was paid is exact; the baselines see each
quarter-hour's mean PV and load, so a deficit and a surplus within one quarter-hour net out in
them. Intervals without PV, load or grid data count for nothing in all three (and are reported
as missing); intervals without a price count for energy but not for money. Reports carry the
data manager's status, so a gap in history is visible.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams
from controller.settlement.engine import MONTH_FIELDS, Bill, Metered, MonthBill, settle
from controller.settlement.prices import tariff_fees
from controller.settlement.schemes import PER_SLOT, Scheme
from controller.sim.scenario import Scenario
from controller.sim.variants import self_use_flows
from drivers.days import day_window
from drivers.prices.tariff import TariffConfig
from storage.analytics import voltage_report
from storage.datamanager import DataManager
from storage.records import DataStatus, FloatArray, JsonValue, Resolution
from storage.voltage_stats import VoltageLimits, local_calendar

FIELDS = ("pv_w", "load_w", "grid_w", "battery_w", "soc_pct", "price.import_price", "price.export_price")
PERIODS = ("day", "week", "month")
STEP = Resolution.MIN15
DEFAULT_SOC_PCT = 50.0


@dataclass(frozen=True, eq=False)
class PricedHistory:
    """Per 15-min interval, kWh (0 where missing) and prices (NaN where unknown)."""

    status: DataStatus
    message: str
    times: FloatArray  # interval starts, epoch seconds
    pv: FloatArray
    load: FloatArray
    imported: FloatArray
    exported: FloatArray
    charged: FloatArray
    discharged: FloatArray
    import_price: FloatArray
    export_price: FloatArray
    present: npt.NDArray[np.bool_]
    first_soc_pct: float | None

    @property
    def step_h(self) -> float:
        return STEP.seconds / 3600.0

    def scenario(self, currency: str, name: str = "history") -> Scenario:
        """The history as a scenario (gaps as zero power, unknown prices as zero), for replays."""
        to_w = 1000.0 / self.step_h
        return Scenario(
            name=name,
            currency=currency,
            start=datetime.fromtimestamp(float(self.times[0]), UTC),
            step=timedelta(seconds=STEP.seconds),
            filled_intervals=0,
            import_price=np.nan_to_num(self.import_price, nan=0.0),
            export_price=np.nan_to_num(self.export_price, nan=0.0),
            pv_w=self.pv * to_w,
            load_w=self.load * to_w,
        )


async def read_site_history(data: DataManager, start: datetime, end: datetime) -> PricedHistory:
    """The 15-min intervals of [start, end) up to now, each whether or not storage holds data for it."""
    width = STEP.seconds
    lo = math.floor(start.timestamp() / width) * width
    axis = np.arange(lo, min(end, data.now()).timestamp(), width, dtype=np.float64)
    result = await data.history(FIELDS, start, end, STEP)
    if result.data is None or axis.size == 0:
        empty = np.empty(0)
        return PricedHistory(result.status, result.message, empty, *(empty,) * 8, np.empty(0, bool), None)
    h = result.data
    index = np.searchsorted(axis, h.times)
    inside = index < axis.size
    index = index[inside]

    def placed(values: FloatArray, fill: float) -> FloatArray:
        out = np.full(axis.size, fill)
        out[index] = values[inside]
        return out

    f = h.fields
    present = (
        placed(
            ((f["pv_w"].count > 0) & (f["load_w"].count > 0) & (f["grid_w"].count > 0)).astype(np.float64),
            0.0,
        )
        > 0
    )

    def kwh(name: str, part: str) -> FloatArray:
        return np.where(present, placed(np.nan_to_num(getattr(f[name], part), nan=0.0), 0.0), 0.0) / 1000.0

    soc = f["soc_pct"].mean[np.isfinite(f["soc_pct"].mean)]
    return PricedHistory(
        result.status,
        result.message,
        axis,
        kwh("pv_w", "energy_in_wh"),
        kwh("load_w", "energy_in_wh"),
        kwh("grid_w", "energy_in_wh"),
        kwh("grid_w", "energy_out_wh"),
        kwh("battery_w", "energy_out_wh"),
        kwh("battery_w", "energy_in_wh"),
        placed(f["price.import_price"].last, math.nan),
        placed(f["price.export_price"].last, math.nan),
        present,
        float(soc[0]) if soc.size else None,
    )


@dataclass(frozen=True)
class PeriodEnergy:
    label: str
    first_day: date
    last_day: date
    intervals: int
    missing: int
    pv_kwh: float = 0.0
    self_consumed_kwh: float = 0.0
    export_kwh: float = 0.0
    import_kwh: float = 0.0
    load_kwh: float = 0.0
    charge_kwh: float = 0.0
    discharge_kwh: float = 0.0
    cycles: float = 0.0
    cost_paid: float = 0.0
    cost_no_battery: float = 0.0
    cost_self_consumption: float = 0.0
    unpriced: int = 0

    @property
    def self_consumption_ratio(self) -> float | None:
        return self.self_consumed_kwh / self.pv_kwh if self.pv_kwh > 0 else None

    @property
    def autarky_ratio(self) -> float | None:
        return max(0.0, 1.0 - self.import_kwh / self.load_kwh) if self.load_kwh > 0 else None

    @property
    def savings_battery(self) -> float:
        return self.cost_no_battery - self.cost_self_consumption

    @property
    def savings_planning(self) -> float:
        return self.cost_self_consumption - self.cost_paid

    def to_dict(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "label": self.label,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
        }
        for f in fields(self):
            if f.name in out:
                continue
            value = getattr(self, f.name)
            out[f.name] = value if isinstance(value, int) else round(value, 4)
        for name in ("self_consumption_ratio", "autarky_ratio", "savings_battery", "savings_planning"):
            value = getattr(self, name)
            out[name] = None if value is None else round(value, 4)
        return out


@dataclass(frozen=True)
class EnergyReport:
    period: str
    currency: str
    status: DataStatus
    message: str
    battery: BatteryParams
    periods: list[PeriodEnergy]
    total: PeriodEnergy | None
    bill: Bill | None = None  # the months as settled (controller.settlement)

    def to_dict(self) -> dict[str, JsonValue]:
        b = self.battery
        bill: JsonValue = None
        if self.bill is not None:
            months: list[JsonValue] = []
            for month in self.bill.months:
                row: dict[str, JsonValue] = dict(month.to_dict())
                months.append(row)
            bill = {"scheme": self.bill.scheme, "months": months}
        return {
            "period": self.period,
            "currency": self.currency,
            "status": self.status.value,
            "message": self.message,
            "battery": {
                "capacity_kwh": b.capacity_kwh,
                "min_soc_pct": b.min_soc_pct,
                "max_soc_pct": b.max_soc_pct,
                "max_charge_w": b.max_charge_w,
                "max_discharge_w": b.max_discharge_w,
            },
            "periods": [p.to_dict() for p in self.periods],
            "total": None if self.total is None else self.total.to_dict(),
            "bill": bill,
        }


def _period_keys(times: FloatArray, tz: tzinfo, period: str) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Per interval the index of its local period, and the periods' labels."""
    _, days = local_calendar(times, tz)
    if period == "day":
        keys = days
    elif period == "week":
        keys = days - (days - 1) % 7  # day 1 (0001-01-01) was a Monday
    else:
        unique, inverse = np.unique(days, return_inverse=True)
        months = np.array(
            [date.fromordinal(int(d)).year * 12 + date.fromordinal(int(d)).month - 1 for d in unique]
        )
        keys = months[inverse]
    unique_keys, index = np.unique(keys, return_inverse=True)

    def label(key: int) -> str:
        if period == "month":
            return f"{key // 12:04d}-{key % 12 + 1:02d}"
        day = date.fromordinal(key)
        if period == "week":
            iso = day.isocalendar()
            return f"{iso.year:04d}-W{iso.week:02d}"
        return day.isoformat()

    return index.astype(np.int64), [label(int(k)) for k in unique_keys]


@dataclass(frozen=True, slots=True)
class BillSource:
    """How recorded money is settled: the scheme, and the tariff whose fees and VAT the stored
    import prices hold (None: the prices are not split into energy, fees and VAT)."""

    scheme: Scheme = PER_SLOT
    tariff: TariffConfig | None = None


def settle_history(history: PricedHistory, tz: ZoneInfo, source: BillSource) -> Bill:
    """The recorded imports and exports settled month by month (unknown prices count as 0)."""
    h = history
    start_s = h.times.astype(np.int64)
    priced = np.isfinite(h.import_price) & np.isfinite(h.export_price)
    ip, ep = np.where(priced, h.import_price, 0.0), np.where(priced, h.export_price, 0.0)
    fees, vat = None, 0.0
    if source.tariff is not None:
        fees, vat = np.where(priced, tariff_fees(source.tariff, start_s, tz), 0.0), source.tariff.vat
    metered = Metered(start_s, STEP.seconds, h.imported, h.exported, ip, ep, fees_per_kwh=fees, vat=vat)
    return settle(metered, source.scheme, tz)


BILL_COLUMNS = (
    ("energy", "energy"),
    ("fees", "fees"),
    ("capacity", "capacity"),
    ("standing", "standing"),
    ("vat", "VAT"),
    ("export_paid", "export"),
    ("deposit_used", "deposit"),
    ("deposit_refund", "refund"),
    ("total", "total"),
    ("peak_kw", "peak kW"),
)


def bill_lines(bill: Bill) -> list[str]:
    """The bill by month as a table: a header and a line a month."""

    def row(month: MonthBill) -> str:
        return f"{month.month:<9}" + "".join(f"{getattr(month, name):>10.2f}" for name, _ in BILL_COLUMNS)

    header = f"{'month':<9}" + "".join(f"{title:>10}" for _, title in BILL_COLUMNS)
    return [header, *(row(month) for month in bill.months)]


def energy_report(
    history: PricedHistory,
    battery: BatteryParams,
    tz: tzinfo,
    period: str = "day",
    currency: str = "XXX",
    bill: BillSource | None = None,
) -> EnergyReport:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    h = history
    if h.times.size == 0:
        return EnergyReport(period, currency, h.status, h.message, battery, [], None)
    message = h.message
    soc = h.first_soc_pct
    if soc is None:
        soc, message = (
            DEFAULT_SOC_PCT,
            f"{message}; no SoC recorded: the replay starts at {DEFAULT_SOC_PCT:g} %",
        )
    soc = min(max(soc, battery.min_soc_pct), battery.max_soc_pct)
    to_w = 1000.0 / h.step_h
    replay = self_use_flows([battery], h.pv * to_w, h.load * to_w, h.step_h, soc)
    sim = replay.grid_w[:, 0] / to_w
    house = h.load - h.pv
    priced = np.isfinite(h.import_price) & np.isfinite(h.export_price)
    ip, ep = np.where(priced, h.import_price, 0.0), np.where(priced, h.export_price, 0.0)

    def cost(imported: FloatArray, exported: FloatArray) -> FloatArray:
        result: FloatArray = imported * ip - exported * ep
        return result

    columns = {
        "pv_kwh": h.pv,
        "self_consumed_kwh": np.maximum(h.pv - h.exported, 0.0),
        "export_kwh": h.exported,
        "import_kwh": h.imported,
        "load_kwh": h.load,
        "charge_kwh": h.charged,
        "discharge_kwh": h.discharged,
        "cost_paid": cost(h.imported, h.exported),
        "cost_no_battery": cost(np.maximum(house, 0.0), np.maximum(-house, 0.0)),
        "cost_self_consumption": cost(np.maximum(sim, 0.0), np.maximum(-sim, 0.0)),
    }
    index, labels = _period_keys(h.times, tz, period)
    usable = (battery.e_max_kwh - battery.e_min_kwh) * battery.discharge_efficiency
    _, days = local_calendar(h.times, tz)

    def summed(part: npt.NDArray[np.bool_], label: str) -> PeriodEnergy:
        sums = {name: float(values[part].sum()) for name, values in columns.items()}
        return PeriodEnergy(
            label,
            date.fromordinal(int(days[part].min())),
            date.fromordinal(int(days[part].max())),
            int(part.sum()),
            int((part & ~h.present).sum()),
            **sums,
            cycles=sums["discharge_kwh"] / usable,
            unpriced=int((part & h.present & ~priced).sum()),
        )

    periods = [summed(index == i, label) for i, label in enumerate(labels)]
    total = summed(np.ones(h.times.size, dtype=bool), "total")
    settled = settle_history(h, tz, bill) if bill is not None and isinstance(tz, ZoneInfo) else None
    return EnergyReport(period, currency, h.status, message.strip("; "), battery, periods, total, settled)


async def month_bill(data: DataManager, tz: ZoneInfo, source: BillSource) -> MonthBill | None:
    """This local month's bill so far (None before any interval of it)."""
    now = data.now().astimezone(tz)
    start = datetime(now.year, now.month, 1, tzinfo=tz)
    if now <= start:  # the month's first instant: nothing of it yet
        return None
    history = await read_site_history(data, start, now)
    if history.times.size == 0:
        return None
    months = settle_history(history, tz, source).months
    return months[-1] if months else None


class MonthBillReader:
    """This month's bill so far, shared by every reader of a running site (the plan's peak, Home
    Assistant, the dashboard): the month's whole history is read and settled at most once per
    ``max_age`` of the data manager's clock, and by one caller at a time."""

    def __init__(self, max_age: timedelta = timedelta(minutes=1)) -> None:
        self._max_age = max_age
        self._lock = asyncio.Lock()
        self._read: tuple[DataManager, ZoneInfo, BillSource, datetime, MonthBill | None] | None = None

    async def read(self, data: DataManager, tz: ZoneInfo, source: BillSource) -> MonthBill | None:
        async with self._lock:
            now = data.now()
            cached = self._read
            if cached is not None:
                c_data, c_tz, c_source, at, month = cached
                same_month = _month_start(at, tz) == _month_start(now, tz)
                fresh = timedelta(0) <= now - at < self._max_age
                if c_data is data and c_tz == tz and c_source == source and same_month and fresh:
                    return month
            month = await month_bill(data, tz, source)
            self._read = (data, tz, source, now, month)
            return month


async def exported_before_month(data: DataManager, tz: ZoneInfo, source: BillSource) -> float:
    """The export (kWh, as settled) of this local year's months before this one."""
    now = data.now().astimezone(tz)
    start, end = datetime(now.year, 1, 1, tzinfo=tz), datetime(now.year, now.month, 1, tzinfo=tz)
    if end <= start:
        return 0.0
    history = await read_site_history(data, start, end)
    if history.times.size == 0:
        return 0.0
    return float(sum(m.export_kwh for m in settle_history(history, tz, source).months))


def _month_start(at: datetime, tz: ZoneInfo) -> tuple[int, int]:
    local = at.astimezone(tz)
    return local.year, local.month


BILL_STATE_FIELDS = frozenset({"month_start", "currency", "scheme", *MONTH_FIELDS})


def bill_state(month: MonthBill, tz: ZoneInfo, currency: str, scheme: str) -> dict[str, JsonValue]:
    """The month-to-date bill as published (MQTT ``<base>/bill``, ``/api/analytics/bill``)."""
    first = datetime(int(month.month[:4]), int(month.month[5:7]), 1, tzinfo=tz)
    state: dict[str, JsonValue] = {"month_start": first.isoformat(), "currency": currency, "scheme": scheme}
    state.update(month.to_dict())
    return state


async def analytics_summary(
    data: DataManager,
    day: date,
    tz: tzinfo,
    battery: BatteryParams,
    currency: str,
    limits: VoltageLimits = VoltageLimits(),  # noqa: B008 - frozen
) -> dict[str, JsonValue]:
    """One local day's voltage quality and energy account as plain JSON-able data (for MQTT sensors)."""
    start, end = day_window(day, tz)
    end = min(end, data.now())
    if end <= start:
        raise ValueError(f"analytics summary: day {day.isoformat()} has not begun")
    volts = await voltage_report(data, start, end, tz, limits, critical=0)
    energy = energy_report(await read_site_history(data, start, end), battery, tz, "day", currency)
    phases: dict[str, JsonValue] = {}
    for phase, values in volts.summary().items():
        fit = next(c for c in volts.correlation if c.phase == phase).to_dict()
        phases[phase] = {
            **values,
            **{k: fit[k] for k in ("slope_v_per_kw", "r", "impedance_ohm", "likely_over_voltage_export_kw")},
        }
    total = energy.total.to_dict() if energy.total is not None else None
    return {
        "day": day.isoformat(),
        "voltage": {"status": volts.status.value, "message": volts.message, "phases": phases},
        "energy": {
            "status": energy.status.value,
            "message": energy.message,
            "currency": currency,
            "totals": total,
        },
    }
