"""The settlement engine: metered import/export per slot to the bill, per period and per month.

Per slot the meter gives import and export (kWh) and the prices the price service composed
(import: market + fees by zone, VAT; export: market x factor or fixed). The scheme
(:mod:`controller.settlement.schemes`) then:

1. nets import and export within each settlement period where it says so (the period's
   imports and exports shrink in proportion, each slot keeping its price);
2. splits each slot's import cost into energy, per-kWh fees and VAT (from the tariff's fees and
   VAT rate) and adds time-variable grid fees;
3. values the exported energy (the per-slot export price, a market price averaged over a period
   and clamped, a published monthly price, or a fixed feed-in price up to a yearly cap);
4. per month adds the capacity charge (peak of window-average import power), standing charges
   and their VAT, and pays the export value out or credits it to a prosumer deposit that pays
   later bills, oldest first, expiring with a capped refund.

Months are local calendar months; charges per month (capacity, standing) count pro rata for a
month only partly settled. With the default scheme the bill is exactly the per-slot sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

import numpy as np
import numpy.typing as npt

from controller.settlement.schemes import (
    DepositLot,
    ExportValue,
    Period,
    Scheme,
    add_months,
    days_in_month,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PEAK_WINDOW_MIN = 15  # the month's peak reported without a capacity charge: of 15-min average import


@dataclass(frozen=True, eq=False)
class Metered:
    """What was metered, per slot, and the prices in force (currency/kWh)."""

    start_s: IntArray  # slot starts, epoch seconds, ascending
    step_s: int
    import_kwh: FloatArray
    export_kwh: FloatArray
    import_price: FloatArray  # all in: energy, per-kWh fees, VAT
    export_price: FloatArray
    market_price: FloatArray | None = None  # net market price, for export valued at market
    fees_per_kwh: FloatArray | None = None  # the net per-kWh fees inside import_price
    vat: float = 0.0  # the VAT rate inside import_price

    def __post_init__(self) -> None:
        n = self.start_s.size
        if self.step_s <= 0:
            raise ValueError(f"metered step_s must be > 0, got {self.step_s!r}")
        for name in (
            "import_kwh",
            "export_kwh",
            "import_price",
            "export_price",
            "market_price",
            "fees_per_kwh",
        ):
            values = getattr(self, name)
            if values is None:
                continue
            if values.shape != (n,):
                raise ValueError(f"metered {name}: expected {n} values, got shape {values.shape}")
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise ValueError(f"metered {name}[{bad[0]}] is not finite: {values[bad[0]]!r}")
        if n > 1 and np.any(np.diff(self.start_s) <= 0):
            raise ValueError("metered start_s must be ascending")
        if not (math.isfinite(self.vat) and 0 <= self.vat <= 1):
            raise ValueError(f"metered vat must be within 0..1, got {self.vat!r}")


MONTH_AMOUNTS = (
    "import_kwh",
    "export_kwh",
    "energy",
    "fees",
    "capacity",
    "standing",
    "vat",
    "export_value",
    "export_paid",
    "deposit_credited",
    "deposit_used",
    "deposit_refund",
    "deposit_balance",
    "peak_kw",
    "billed_kw",
)
MONTH_FIELDS = ("month", "covered", *MONTH_AMOUNTS, "total")  # MonthBill.to_dict's keys


@dataclass(frozen=True, slots=True)
class MonthBill:
    """One local month; every amount in the site currency, the total is what is paid."""

    month: str  # "YYYY-MM"
    covered: float  # share of the month's time settled (0..1)
    import_kwh: float  # after netting
    export_kwh: float
    energy: float  # import energy, net of VAT and fees
    fees: float  # per-kWh fees (the tariff's and time-variable grid fees), net of VAT
    capacity: float
    standing: float
    vat: float
    export_value: float  # what the exported energy is worth under the scheme
    export_paid: float  # of it, paid out or credited on this bill (without a deposit: all)
    deposit_credited: float
    deposit_used: float
    deposit_refund: float
    deposit_balance: float  # at the month's end
    peak_kw: float  # the month's highest window-average import power
    billed_kw: float  # the kW the capacity charge is billed on

    @property
    def total(self) -> float:
        return (
            self.energy
            + self.fees
            + self.capacity
            + self.standing
            + self.vat
            - self.export_paid
            - self.deposit_used
            - self.deposit_refund
        )

    def to_dict(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {"month": self.month, "covered": round(self.covered, 4)}
        for name in MONTH_AMOUNTS:
            out[name] = round(float(getattr(self, name)), 4)
        out["total"] = round(self.total, 4)
        return out


@dataclass(frozen=True, eq=False)
class PeriodBill:
    """Per settlement period (arrays): its first slot's start, settled kWh and money."""

    start_s: IntArray
    import_kwh: FloatArray
    export_kwh: FloatArray
    import_cost: FloatArray  # gross: energy, fees, VAT
    export_value: FloatArray


@dataclass(frozen=True, eq=False)
class Bill:
    scheme: str
    months: tuple[MonthBill, ...]
    periods: PeriodBill
    deposit: tuple[DepositLot, ...]  # the lots left at the end

    @property
    def total(self) -> float:
        return float(sum(m.total for m in self.months))

    def component(self, name: str) -> float:
        return float(sum(getattr(m, name) for m in self.months))

    def to_dict(self) -> dict[str, object]:
        return {
            "scheme": self.scheme,
            "total": round(self.total, 4),
            "months": [m.to_dict() for m in self.months],
        }


@dataclass(frozen=True, eq=False)
class LocalFields:
    month: IntArray  # year * 12 + month - 1
    year: IntArray
    day: IntArray  # proleptic ordinal of the local date
    minute: IntArray  # local minute of the day
    month_of_year: IntArray


def local_fields(start_s: IntArray, tz: tzinfo) -> LocalFields:
    quarters, inverse = np.unique(start_s // 900, return_inverse=True)
    rows = []
    for q in quarters.tolist():
        t = datetime.fromtimestamp(q * 900, UTC).astimezone(tz)
        rows.append((t.year * 12 + t.month - 1, t.year, t.toordinal(), t.hour * 60 + t.minute, t.month))
    table = np.asarray(rows, dtype=np.int64).reshape(-1, 5)[inverse]
    minute = table[:, 3] + (start_s % 900) // 60
    return LocalFields(table[:, 0], table[:, 1], table[:, 2], minute, table[:, 4])


def period_keys(period: Period, start_s: IntArray, local: LocalFields) -> IntArray:
    """Each slot's settlement period (equal keys: the same period)."""
    if period == "slot":
        return np.arange(start_s.size, dtype=np.int64)
    if period == "quarter_hour":
        return start_s // 900
    if period == "hour":
        return start_s // 3600
    if period == "day":
        return local.day
    return local.month


def _group(keys: IntArray) -> tuple[IntArray, IntArray]:
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, inverse.astype(np.int64)


def _sum(inverse: IntArray, values: FloatArray, size: int) -> FloatArray:
    summed: FloatArray = np.bincount(inverse, weights=values, minlength=size).astype(np.float64)
    return summed


def _month_text(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def export_value(
    rule: ExportValue, m: Metered, exported: FloatArray, local: LocalFields, year_exported_before_kwh: float
) -> FloatArray:
    if rule.basis == "tariff":
        value: FloatArray = exported * m.export_price
        return value
    if rule.basis == "market":
        market = m.market_price if m.market_price is not None else m.export_price
        unique, inverse = _group(period_keys(rule.average, m.start_s, local))
        counts = np.bincount(inverse, minlength=unique.size)
        mean = _sum(inverse, market, unique.size) / counts
        if rule.clamp_at_zero:
            mean = np.maximum(mean, 0.0)
        valued: FloatArray = exported * mean[inverse] * rule.coefficient
        return valued
    if rule.basis == "published":
        months, inverse = _group(local.month)
        given = [rule.published(_month_text(int(k))) for k in months.tolist()]
        prices = np.array([np.nan if p is None else p for p in given], dtype=np.float64)[inverse]
        # a month before any price given: its slots' export prices
        published: FloatArray = exported * np.where(
            np.isnan(prices), m.export_price, prices * rule.coefficient
        )
        return published
    paid = exported
    if rule.yearly_cap_kwh is not None:
        paid = np.empty_like(exported)
        for year in np.unique(local.year).tolist():
            inside = local.year == year
            before = year_exported_before_kwh if year == int(local.year[0]) else 0.0
            cum = np.cumsum(exported[inside]) + before
            room = np.clip(rule.yearly_cap_kwh - (cum - exported[inside]), 0.0, None)
            paid[inside] = np.minimum(exported[inside], room)
    return paid * rule.fixed_price


def _peaks(m: Metered, window_min: int, local: LocalFields) -> dict[int, float]:
    """The highest window-average import power (kW) in each local month."""
    window_s = window_min * 60
    width_h = max(window_s, m.step_s) / 3600.0
    keys = m.start_s // window_s if m.step_s <= window_s else np.arange(m.start_s.size, dtype=np.int64)
    unique, inverse = _group(keys)
    power = _sum(inverse, m.import_kwh, unique.size) / width_h
    first = np.zeros(unique.size, dtype=np.int64)
    first[inverse[::-1]] = np.arange(inverse.size - 1, -1, -1)
    months = local.month[first]
    out: dict[int, float] = {}
    for month in np.unique(months).tolist():
        out[int(month)] = float(power[months == month].max())
    return out


class _DepositBook:
    def __init__(self, lots: tuple[DepositLot, ...]) -> None:
        self.lots = list(lots)

    def credit(self, month: str, value: float) -> None:
        if value > 0:
            self.lots.append(DepositLot(month, value, value))

    def use(self, month: str, wanted: float) -> float:
        """Pay up to ``wanted`` from the lots credited by ``month``, oldest first."""
        used = 0.0
        for i in sorted(range(len(self.lots)), key=lambda i: self.lots[i].month):
            lot = self.lots[i]
            if lot.month > month or used >= wanted:
                continue
            take = min(lot.left, wanted - used)
            used += take
            self.lots[i] = replace(lot, left=lot.left - take)
        return used

    def expire(self, month: str, expiry_months: int, refund_cap: float) -> float:
        refund = 0.0
        kept = []
        for lot in self.lots:
            if add_months(lot.month, expiry_months - 1) <= month:
                refund += min(lot.left, refund_cap * lot.value)
            else:
                kept.append(lot)
        self.lots = kept
        return refund

    def balance(self, month: str) -> float:
        return sum(lot.left for lot in self.lots if lot.month <= month)


def settle(m: Metered, scheme: Scheme, tz: tzinfo, year_exported_before_kwh: float = 0.0) -> Bill:
    """The bill of what was metered under ``scheme``, months in ``tz``."""
    n = m.start_s.size
    local = local_fields(m.start_s, tz) if n else LocalFields(*(np.empty(0, np.int64),) * 5)
    unique, inverse = _group(period_keys(scheme.netting.period, m.start_s, local))
    imported, exported = m.import_kwh, m.export_kwh
    if scheme.netting.net:
        imp_p, exp_p = _sum(inverse, imported, unique.size), _sum(inverse, exported, unique.size)
        net = imp_p - exp_p
        keep_i = np.divide(np.maximum(net, 0.0), imp_p, out=np.zeros_like(imp_p), where=imp_p > 0)
        keep_e = np.divide(np.maximum(-net, 0.0), exp_p, out=np.zeros_like(exp_p), where=exp_p > 0)
        imported, exported = imported * keep_i[inverse], exported * keep_e[inverse]

    gross = imported * m.import_price
    vat = gross * (m.vat / (1.0 + m.vat))
    fees = imported * m.fees_per_kwh if m.fees_per_kwh is not None else np.zeros(n)
    energy = gross - vat - fees
    if scheme.grid_fees is not None:
        rule = scheme.grid_fees
        added = np.array(
            [
                rule.added_gross(int(t), int(mo))
                for t, mo in zip(local.minute, local.month_of_year, strict=True)
            ]
        )
        added_gross = imported * added
        added_net = added_gross / (1.0 + rule.vat_included)
        fees = fees + added_net
        vat = vat + (added_gross - added_net)
        gross = gross + added_gross
    value = export_value(scheme.export, m, exported, local, year_exported_before_kwh)

    periods = PeriodBill(
        start_s=m.start_s[np.unique(inverse, return_index=True)[1]] if n else m.start_s,
        import_kwh=_sum(inverse, imported, unique.size),
        export_kwh=_sum(inverse, exported, unique.size),
        import_cost=_sum(inverse, gross, unique.size),
        export_value=_sum(inverse, value, unique.size),
    )

    window_min = scheme.capacity.window_min if scheme.capacity is not None else PEAK_WINDOW_MIN
    peaks = _peaks(m, window_min, local) if n else {}
    peak_history = list(scheme.capacity.previous_peaks_kw) if scheme.capacity is not None else []
    book = _DepositBook(scheme.opening_deposit)
    months_out: list[MonthBill] = []
    month_keys, month_index = _group(local.month)
    for k, key in enumerate(month_keys.tolist()):
        sel = month_index == k
        month = _month_text(int(key))
        covered = min(1.0, float(sel.sum()) * m.step_s / (days_in_month(month) * 86400.0))
        peak = peaks.get(int(key), 0.0)
        capacity = billed = 0.0
        if scheme.capacity is not None:
            c = scheme.capacity
            peak_history.append(peak)
            window = peak_history[-c.average_months :]
            if c.minimum_on == "month":
                window = [max(p, c.minimum_kw) for p in window]
            billed = sum(window) / len(window)
            if c.minimum_on == "average":
                billed = max(billed, c.minimum_kw)
            capacity = billed * c.price_per_kw_month * covered
        standing = sum(s.per_month for s in scheme.standing) * covered
        month_vat = float(vat[sel].sum()) + (capacity + standing) * scheme.vat
        month_energy, month_fees = float(energy[sel].sum()), float(fees[sel].sum())
        month_value = float(value[sel].sum())
        paid = month_value
        credited = used = refund = 0.0
        if scheme.deposit is not None:
            d = scheme.deposit
            paid = 0.0
            credited = month_value * d.coefficient
            book.credit(add_months(month, d.credited_after_months), credited)
            coverable = 0.0
            if "energy" in d.covers:
                coverable += month_energy * (1.0 + m.vat)
            if "fees" in d.covers:
                coverable += month_fees * (1.0 + m.vat)
            used = book.use(month, coverable)
            refund = book.expire(month, d.expiry_months, d.refund_cap)
        months_out.append(
            MonthBill(
                month=month,
                covered=covered,
                import_kwh=float(imported[sel].sum()),
                export_kwh=float(exported[sel].sum()),
                energy=month_energy,
                fees=month_fees,
                capacity=capacity,
                standing=standing,
                vat=month_vat,
                export_value=month_value,
                export_paid=paid,
                deposit_credited=credited,
                deposit_used=used,
                deposit_refund=refund,
                deposit_balance=book.balance(month),
                peak_kw=peak,
                billed_kw=billed,
            )
        )
    return Bill(scheme.name, tuple(months_out), periods, tuple(book.lots))


def per_slot_cost(m: Metered) -> FloatArray:
    """Today's cost of each slot (import kWh x price - export kWh x price): the default scheme's."""
    cost: FloatArray = m.import_kwh * m.import_price - m.export_kwh * m.export_price
    return cost
