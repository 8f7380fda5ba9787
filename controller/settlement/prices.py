"""What the planners see of a scheme: its per-slot parts as prices, its rules as limits.

The parts of a bill that are a price per kWh of one slot are planned exactly: time-variable
grid fees are added to the import price, and exported energy is priced as the scheme values it
(a market price averaged and clamped, a published monthly price, a fixed feed-in price, times
the deposit's coefficient). Netting within a period is planned per period
(:mod:`controller.planner.periods`) and a capacity charge by an outer search
(:mod:`controller.planner.peak`). A yearly feed-in cap is not per slot either: what is left of
it this year (:func:`export_room`) bounds the export the plan is paid for, and the planners
price export by it (:mod:`controller.planner.export_room`). A deposit's limits are settled, not
planned: whether a month's credit expires unspent depends on the next 12 months' bills, one
factor on the whole month's export value, beyond any 48-hour plan (README, "Settlement"). With
the default scheme the prices come back unchanged, the same arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.physics import GridLimits
from controller.settlement.engine import FloatArray, IntArray, Metered, export_value, local_fields
from controller.settlement.schemes import ExportRules, Scheme
from drivers.prices.tariff import TariffConfig


def planning_prices(
    scheme: Scheme,
    start_s: IntArray,
    step_s: int,
    import_price: FloatArray,
    export_price: FloatArray,
    tz: tzinfo,
) -> tuple[FloatArray, FloatArray]:
    """(import, export) price per slot as the scheme settles a kWh of each slot.

    ``export_price`` is the per-slot export price the price service composed; a scheme that
    values export at market takes it as the market price."""
    if start_s.size == 0 or (
        scheme.grid_fees is None and scheme.export.basis == "tariff" and scheme.deposit is None
    ):
        return import_price, export_price
    local = local_fields(start_s, tz)
    if scheme.grid_fees is not None:
        fees = scheme.grid_fees
        added = np.array(
            [fees.added_gross(int(t), int(m)) for t, m in zip(local.minute, local.month_of_year, strict=True)]
        )
        import_price = import_price + added
    if scheme.export.basis != "tariff" or scheme.deposit is not None:
        ones = np.ones(start_s.size)
        metered = Metered(start_s, step_s, np.zeros(start_s.size), ones, import_price, export_price)
        export = replace(scheme.export, yearly_cap_kwh=None)
        export_price = export_value(export, metered, ones, local, 0.0)
        if scheme.deposit is not None:
            export_price = export_price * scheme.deposit.coefficient
    return import_price, export_price


@dataclass(frozen=True, eq=False)
class ExportRoom:
    """What is left of a yearly feed-in cap over a horizon: at most ``kwh`` more is paid for in
    the slots ``within`` (those of the current local year, in time order); export beyond it is
    worth ``after`` per kWh (under a cap: nothing)."""

    kwh: float
    within: npt.NDArray[np.bool_]
    after: float = 0.0


def export_room(scheme: Scheme, start_s: IntArray, tz: tzinfo, year_exported_kwh: float) -> ExportRoom | None:
    """The room left of the scheme's yearly feed-in cap for the slots starting at ``start_s``,
    with ``year_exported_kwh`` exported (as settled) since the local year began; None without a
    cap. The next year's slots start with the whole cap, more than a horizon can export."""
    cap = scheme.export.yearly_cap_kwh
    if scheme.export.basis != "fixed" or cap is None or start_s.size == 0:
        return None
    if not (math.isfinite(year_exported_kwh) and year_exported_kwh >= 0):
        raise ValueError(f"year_exported_kwh must be finite and >= 0, got {year_exported_kwh!r}")
    year = local_fields(start_s, tz).year
    return ExportRoom(max(cap - year_exported_kwh, 0.0), year == year[0])


def planning_limits(rules: ExportRules, limits: GridLimits, pv_peak_w: float) -> GridLimits:
    """The connection's limits with the scheme's export limit (the lower of the two)."""
    cap = rules.export_limit(pv_peak_w)
    if cap is None or cap >= limits.max_export_w:
        return limits
    return GridLimits(max_import_w=limits.max_import_w, max_export_w=max(cap, 0.0))


def tariff_fees(tariff: TariffConfig, start_s: IntArray, tz: ZoneInfo) -> FloatArray:
    """The net per-kWh fees the tariff adds to the market price in each slot (by its zone)."""
    calendar = tariff.calendar.build(tz)
    quarters, inverse = np.unique(start_s // 900, return_inverse=True)
    per = [tariff.fees[calendar.zone_at(datetime.fromtimestamp(int(q) * 900, UTC))].total for q in quarters]
    fees: FloatArray = np.asarray(per, dtype=np.float64).reshape(-1)[inverse.reshape(-1)]
    return fees
