"""Energy and money of one local day, and savings against the same house without a battery.

Everything is read back from storage at 1-minute resolution. The rollups hold, per minute, the
energy of the positive and of the negative part of each power field, integrated sample by sample
and never across an outage: grid import/export are grid_w's positive/negative energy, battery
discharge/charge battery_w's positive/negative energy, PV and load the energy of pv_w and load_w.
Money uses the stored price slots (quarter-hours, currency/kWh) in force in each minute; minutes
without a known price count for energy but not for money.

Savings compare with the house without a battery at the same prices: in each minute it would
import max(0, load - pv) and export max(0, pv - load). Savings = that cost minus the actual net
cost. The total since installation is kept in the state table (``savings``) as the sum over
finished days, plus today's value; when the local date moves on, the days in between are
finished from storage (also days the daemon was down, as far as history reaches), so the total
survives restarts and never counts a day twice.

Every quantity is a sum over minutes, so today's account is read incrementally
(:class:`TodayAccount`): minutes older than SETTLE_S are read once and kept, only the newest
minutes are read on every publish. Samples imported later into an already settled minute of
today show from the next day on (in the finished day's savings).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, tzinfo

import numpy as np

from drivers.days import day_window
from storage.datamanager import DataManager
from storage.records import FloatArray, History, Resolution

log = logging.getLogger(__name__)

SAVINGS_KEY = "savings"
PRICE_SLOT_S = 900.0  # the price service's slots are quarter-hours
SETTLE_S = 120.0  # minutes older than this have all their samples committed
MAX_CATCH_UP_DAYS = 62  # a longer absence: the days before are not counted
FIELDS = ("grid_w", "battery_w", "pv_w", "load_w", "price.import_price", "price.export_price")
BASELINE = "no battery: import max(0, load - pv), export max(0, pv - load) at the same prices"


@dataclass(frozen=True, slots=True)
class DayAccount:
    """Energy (kWh) and money (currency) of one local day, up to now for today."""

    day: date
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    pv_kwh: float = 0.0
    load_kwh: float = 0.0
    charge_kwh: float = 0.0
    discharge_kwh: float = 0.0
    import_cost: float = 0.0
    export_revenue: float = 0.0
    baseline_cost: float = 0.0

    @property
    def net_cost(self) -> float:
        return self.import_cost - self.export_revenue

    @property
    def savings(self) -> float:
        return self.baseline_cost - self.net_cost

    def __add__(self, other: DayAccount) -> DayAccount:
        sums = {
            f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "day"
        }
        return DayAccount(self.day, **sums)


def _energy(history: History, name: str, part: str) -> FloatArray:
    values: FloatArray = np.nan_to_num(getattr(history.fields[name], part), nan=0.0)
    return values


def _prices(history: History, name: str) -> FloatArray:
    """The price in force at each bucket start: the latest slot start at most PRICE_SLOT_S before it."""
    values = history.fields[name].last
    known = np.isfinite(values)
    latest = np.maximum.accumulate(np.where(known, np.arange(values.size), -1))
    safe = np.maximum(latest, 0)
    fresh = (latest >= 0) & (history.times - history.times[safe] < PRICE_SLOT_S)
    prices: FloatArray = np.where(fresh, values[safe], np.nan)
    return prices


def account(day: date, history: History, since_s: float = -math.inf) -> DayAccount:
    """The account of the buckets of a history of FIELDS that start at ``since_s`` (epoch s) or later."""
    imp, exp = _energy(history, "grid_w", "energy_in_wh"), _energy(history, "grid_w", "energy_out_wh")
    dis, chg = _energy(history, "battery_w", "energy_in_wh"), _energy(history, "battery_w", "energy_out_wh")
    pv, load = _energy(history, "pv_w", "energy_in_wh"), _energy(history, "load_w", "energy_in_wh")
    ip, ep = _prices(history, "price.import_price"), _prices(history, "price.export_price")
    keep = history.times >= since_s
    imp, exp, dis, chg, pv, load = (np.where(keep, a, 0.0) for a in (imp, exp, dis, chg, pv, load))
    priced = np.isfinite(ip) & np.isfinite(ep)
    ip, ep = np.where(priced, ip, 0.0), np.where(priced, ep, 0.0)
    house = load - pv
    baseline = np.maximum(house, 0.0) * ip - np.maximum(-house, 0.0) * ep
    return DayAccount(
        day=day,
        import_kwh=float(imp.sum()) / 1000.0,
        export_kwh=float(exp.sum()) / 1000.0,
        pv_kwh=float(pv.sum()) / 1000.0,
        load_kwh=float(load.sum()) / 1000.0,
        charge_kwh=float(chg.sum()) / 1000.0,
        discharge_kwh=float(dis.sum()) / 1000.0,
        import_cost=float((imp * ip).sum()) / 1000.0,
        export_revenue=float((exp * ep).sum()) / 1000.0,
        baseline_cost=float(baseline.sum()) / 1000.0,
    )


async def _account_between(data: DataManager, day: date, since_s: float, until_s: float) -> DayAccount | None:
    if until_s <= since_s:
        return DayAccount(day)
    first_slot = math.floor(since_s / PRICE_SLOT_S) * PRICE_SLOT_S  # so that the price in force is read too
    start = datetime.fromtimestamp(first_slot, UTC)
    result = await data.history(
        FIELDS, start, datetime.fromtimestamp(until_s, UTC), resolution=Resolution.MIN1
    )
    if result.data is None:
        log.warning("no energy account for %s: %s", day, result.message)
        return None
    return account(day, result.data, since_s)


async def day_account(data: DataManager, day: date, tz: tzinfo) -> DayAccount | None:
    """The account of a local day up to now (the whole day once it is over); None when storage fails."""
    start, end = day_window(day, tz)
    return await _account_between(data, day, start.timestamp(), min(end, data.now()).timestamp())


class TodayAccount:
    """Today's account, read incrementally (see the module docstring)."""

    def __init__(self, data: DataManager, tz: tzinfo) -> None:
        self.data = data
        self.tz = tz
        self._settled = DayAccount(date.min)
        self._settled_until_s = -math.inf

    async def read(self) -> DayAccount | None:
        now = self.data.now()
        day = now.astimezone(self.tz).date()
        if self._settled.day != day:
            self._settled = DayAccount(day)
            self._settled_until_s = day_window(day, self.tz)[0].timestamp()
        settle_s = math.floor((now.timestamp() - SETTLE_S) / 60.0) * 60.0
        if settle_s > self._settled_until_s:
            settled = await _account_between(self.data, day, self._settled_until_s, settle_s)
            if settled is None:
                return None
            self._settled += settled
            self._settled_until_s = settle_s
        recent = await _account_between(self.data, day, self._settled_until_s, now.timestamp())
        return None if recent is None else self._settled + recent


class SavingsLedger:
    """The savings total since installation (see the module docstring)."""

    def __init__(self, data: DataManager, tz: tzinfo) -> None:
        self.data = data
        self.tz = tz
        self._finished: tuple[date, float] | None = None  # (first unfinished day, savings before it)

    async def _load(self, today: date) -> tuple[date, float]:
        raw = await self.data.get_state(SAVINGS_KEY)
        if (
            isinstance(raw, dict)
            and isinstance(raw.get("day"), str)
            and isinstance(raw.get("before"), int | float)
        ):
            try:
                return date.fromisoformat(str(raw["day"])), float(raw["before"])  # type: ignore[arg-type]
            except ValueError:
                pass
        if raw is not None:
            log.warning("ignoring the stored savings state %r: not {day, before}", raw)
        await self.data.put_state(SAVINGS_KEY, {"day": today.isoformat(), "before": 0.0})
        return today, 0.0

    async def total(self, today: DayAccount) -> float | None:
        """Savings since installation including today so far; None while days cannot be finished."""
        day, before = self._finished or await self._load(today.day)
        if day < today.day:
            if (today.day - day).days > MAX_CATCH_UP_DAYS:
                log.warning(
                    "savings: %s to %s not counted (longer than %d days ago)",
                    day,
                    today.day,
                    MAX_CATCH_UP_DAYS,
                )
                day = today.day - timedelta(days=MAX_CATCH_UP_DAYS)
            while day < today.day:
                finished = await day_account(self.data, day, self.tz)
                if finished is None:
                    break
                before += finished.savings
                day += timedelta(days=1)
            await self.data.put_state(SAVINGS_KEY, {"day": day.isoformat(), "before": before})
        self._finished = (day, before)
        return before + today.savings if day >= today.day else None
