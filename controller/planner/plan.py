"""The plan the optimizer produces: per-slot actions with expected outcomes and explanations.

Actions tell the executor how to follow a slot:

- ``self_use``: the inverter follows the house (store surplus, cover deficit);
- ``export_limit``: self-use with PV curtailed (negative export price or the export cap);
- ``hold``: battery idle (energy kept for later);
- ``charge`` / ``discharge``: battery held at ``battery_w`` (+ discharge / - charge).

Also the planner's inputs: price slots, forecasts as a :class:`Horizon`, the end-of-horizon
value of stored energy and the policy constraints.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Protocol

import numpy as np
import numpy.typing as npt

from controller.physics import Action, BatteryParams, feasible_battery_w
from controller.planner.goals import GoalOutcome

FloatArray = npt.NDArray[np.float64]
ACTIONS = tuple(Action)
POWER_TOLERANCE_W = 1.0  # below this a planned power difference is rounding, not a decision


@dataclass(frozen=True, slots=True)
class PlanSlot:
    start: datetime
    end: datetime
    action: Action
    battery_w: float  # + discharge / - charge
    grid_charge_w: float  # the part of the charge power drawn from the grid
    target_soc_pct: float  # expected SoC at the end of the slot
    grid_w: float  # + import / - export
    pv_w: float  # forecast
    pv_used_w: float  # below pv_w when PV is curtailed
    load_w: float  # forecast
    import_price: float
    export_price: float
    cost: float
    explanation: str

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "action": self.action,
            "battery_w": round(self.battery_w, 1),
            "grid_charge_w": round(self.grid_charge_w, 1),
            "target_soc_pct": round(self.target_soc_pct, 2),
            "grid_w": round(self.grid_w, 1),
            "pv_w": round(self.pv_w, 1),
            "pv_used_w": round(self.pv_used_w, 1),
            "load_w": round(self.load_w, 1),
            "import_price": self.import_price,
            "export_price": self.export_price,
            "cost": round(self.cost, 6),
            "explanation": self.explanation,
        }


@dataclass(frozen=True, eq=False)
class SlotValues:
    """The recourse planner's value of stored energy at the end of each slot: the least expected
    cost from there to the horizon's end (less the end value), on a uniform grid of stored energy.

    With it the executor can choose a slot's mode from what the house does during the slot
    instead of what was forecast (:func:`controller.planner.recourse.decide_known`)."""

    e_min_kwh: float
    step_kwh: float
    after_slot: FloatArray  # (slots, 1 or K cases of the slot, grid points)
    departures_w: FloatArray  # (slots, K): each slot's net load in each case less the forecast
    forecast_net_w: FloatArray  # (slots,): the forecast net load (load - PV)
    # (slots, K, K) or None: the chance of each case of a slot after each case of the slot before
    # (the first slot's: after the slot before the plan)
    transitions: FloatArray | None = None

    def __post_init__(self) -> None:
        if self.after_slot.ndim != 3 or self.after_slot.shape[2] < 2:
            raise ValueError(
                f"after_slot: expected (slots, cases, >= 2 grid points), got {self.after_slot.shape}"
            )
        slots, cases = self.after_slot.shape[:2]
        departures = self.departures_w.shape
        if len(departures) != 2 or departures[0] != slots or cases not in (1, departures[1]):
            raise ValueError(
                f"departures_w: shape {self.departures_w.shape} does not fit after_slot's {self.after_slot.shape}"
            )
        if self.forecast_net_w.shape != (slots,):
            raise ValueError(f"forecast_net_w: expected ({slots},) values, got {self.forecast_net_w.shape}")
        k = departures[1] if len(departures) == 2 else 0
        if self.transitions is not None and self.transitions.shape != (slots, k, k):
            raise ValueError(
                f"transitions: expected ({slots}, {k}, {k}) values, got {self.transitions.shape}"
            )
        if not self.step_kwh > 0:
            raise ValueError(f"step_kwh must be > 0, got {self.step_kwh!r}")


@dataclass(frozen=True, slots=True)
class Plan:
    created_at: datetime
    start_soc_pct: float
    slots: tuple[PlanSlot, ...]
    energy_cost: float  # what the house pays over the horizon, battery wear included
    end_value_per_kwh: float  # value given to each stored kWh left at the end
    objective: float  # energy_cost minus the value of the change of stored energy
    import_kwh: float
    export_kwh: float
    charge_kwh: float
    discharge_kwh: float
    soc_step_kwh: float
    inputs_digest: str
    solve_ms: float = field(compare=False)
    # the recourse planner's (None for other planners and for plans read back from storage)
    values: SlotValues | None = field(default=None, compare=False, repr=False)
    goals: tuple[GoalOutcome, ...] = ()  # what the plan makes of each battery goal on its horizon
    goal_notes: tuple[str, ...] = ()  # the same in words
    # under a capacity charge, the import power the plan holds (controller.planner.peak)
    import_cap_w: float | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, object]:
        extra: dict[str, object] = {}
        if self.goals:
            extra["goals"] = [
                {
                    "kind": o.kind,
                    "soc_pct": o.soc_pct,
                    "at": o.at.isoformat(),
                    "planned_pct": round(o.planned_pct, 2),
                    "reached": o.reached,
                    "note": note,
                }
                for o, note in zip(self.goals, self.goal_notes, strict=True)
            ]
        return {
            "created_at": self.created_at.isoformat(),
            "start_soc_pct": round(self.start_soc_pct, 2),
            "energy_cost": round(self.energy_cost, 6),
            "end_value_per_kwh": round(self.end_value_per_kwh, 6),
            "objective": round(self.objective, 6),
            "import_kwh": round(self.import_kwh, 4),
            "export_kwh": round(self.export_kwh, 4),
            "charge_kwh": round(self.charge_kwh, 4),
            "discharge_kwh": round(self.discharge_kwh, 4),
            "soc_step_kwh": self.soc_step_kwh,
            "inputs_digest": self.inputs_digest,
            "solve_ms": round(self.solve_ms, 3),
            "slots": [slot.to_dict() for slot in self.slots],
        } | extra


def classify(
    params: BatteryParams,
    e_start_kwh: FloatArray,
    dt_h: FloatArray,
    pv_w: FloatArray,
    load_w: FloatArray,
    battery_w: FloatArray,
    pv_used_w: FloatArray,
) -> list[Action]:
    """The action of each slot, from its planned flows (see the module docstring)."""
    actions: list[Action] = []
    for e, dt, pv, load, b, used in zip(
        e_start_kwh.tolist(),
        dt_h.tolist(),
        pv_w.tolist(),
        load_w.tolist(),
        battery_w.tolist(),
        pv_used_w.tolist(),
        strict=True,
    ):
        self_use_w = feasible_battery_w(params, e, load - max(pv, 0.0), dt)
        if used < max(pv, 0.0) - POWER_TOLERANCE_W:
            actions.append(Action.EXPORT_LIMIT)
        elif abs(b - self_use_w) <= POWER_TOLERANCE_W:
            actions.append(Action.SELF_USE)
        elif abs(b) <= POWER_TOLERANCE_W:
            actions.append(Action.HOLD)
        else:
            actions.append(Action.CHARGE if b < 0 else Action.DISCHARGE)
    return actions


def _clock(t: datetime, tz: tzinfo) -> str:
    return t.astimezone(tz).strftime("%H:%M")


def _runs_after(flags: list[bool]) -> list[tuple[int, int] | None]:
    """For each slot, the first run of flagged slots that starts after it (first, last)."""
    out: list[tuple[int, int] | None] = [None] * len(flags)
    following: tuple[int, int] | None = None
    last = -1
    for k in range(len(flags) - 1, -1, -1):
        out[k] = following
        if flags[k]:
            last = k if k + 1 >= len(flags) or not flags[k + 1] else last
            following = (k, last)
    return out


def explain(
    actions: list[Action],
    starts: list[datetime],
    ends: list[datetime],
    battery_w: list[float],
    grid_w: list[float],
    pv_w: list[float],
    pv_used_w: list[float],
    load_w: list[float],
    import_price: list[float],
    export_price: list[float],
    soc_end_pct: list[float],
    end_value_per_kwh: float,
    tz: tzinfo,
) -> list[str]:
    """One line per slot saying what the battery does and why, in words a user understands."""
    lines = []
    peaks = _runs_after([b > POWER_TOLERANCE_W for b in battery_w])
    refills = _runs_after([b < -POWER_TOLERANCE_W for b in battery_w])
    for i, action in enumerate(actions):
        kw = abs(battery_w[i]) / 1000.0
        pi, pe = import_price[i], export_price[i]
        peak, cheap = peaks[i], refills[i]
        if action == Action.CHARGE:
            source = f"at {pi:.2f}/kWh" if grid_w[i] > POWER_TOLERANCE_W else "from PV surplus"
            if peak is not None:
                top = max(import_price[peak[0] : peak[1] + 1])
                why = (
                    f"for the {_clock(starts[peak[0]], tz)}-{_clock(ends[peak[1]], tz)} peak at {top:.2f}/kWh"
                )
            else:
                why = f"stored energy is worth {end_value_per_kwh:.2f}/kWh after the plan"
            lines.append(f"charging {kw:.1f} kW now {source} {why}")
        elif action == Action.DISCHARGE:
            use = (
                f"exporting at {pe:.2f}/kWh"
                if grid_w[i] < -POWER_TOLERANCE_W
                else f"instead of importing at {pi:.2f}/kWh"
            )
            if cheap is None:
                later = ""
            elif grid_w[cheap[0]] > POWER_TOLERANCE_W:
                later = (
                    f"; recharging from {_clock(starts[cheap[0]], tz)} at {import_price[cheap[0]]:.2f}/kWh"
                )
            else:
                later = f"; refilling from PV from {_clock(starts[cheap[0]], tz)}"
            lines.append(f"discharging {kw:.1f} kW now {use}{later}")
        elif action == Action.HOLD:
            if peak is not None:
                top = max(import_price[peak[0] : peak[1] + 1])
                lines.append(
                    f"holding {soc_end_pct[i]:.0f} % for the {_clock(starts[peak[0]], tz)}-"
                    f"{_clock(ends[peak[1]], tz)} peak at {top:.2f}/kWh; grid now at {pi:.2f}/kWh"
                )
            else:
                lines.append(
                    f"holding {soc_end_pct[i]:.0f} %: the grid at {pi:.2f}/kWh is cheaper than stored energy"
                )
        elif action == Action.EXPORT_LIMIT:
            cut = (pv_w[i] - pv_used_w[i]) / 1000.0
            reason = f"export would cost {-pe:.2f}/kWh" if pe < 0 else "the export limit is reached"
            lines.append(f"curtailing {cut:.1f} kW of PV: {reason}")
        elif battery_w[i] < -POWER_TOLERANCE_W:
            lines.append(f"self-use: storing {kw:.1f} kW of PV surplus (export pays {pe:.2f}/kWh)")
        elif battery_w[i] > POWER_TOLERANCE_W:
            lines.append(f"self-use: covering {kw:.1f} kW of the house instead of importing at {pi:.2f}/kWh")
        elif load_w[i] > pv_w[i]:
            lines.append(f"self-use: battery at its floor, importing at {pi:.2f}/kWh")
        else:
            lines.append(
                f"self-use: battery full, exporting PV at {pe:.2f}/kWh"
                if pv_w[i] > load_w[i]
                else "self-use: nothing to store or cover"
            )
    return lines


@dataclass(frozen=True, slots=True)
class EndValue:
    """What the energy left in the battery at the end of the horizon is worth.

    Either a fixed ``price_per_kwh`` or the ``import_percentile`` of the horizon's import
    prices, both per kWh the battery can later deliver (AC); stored energy counts at that
    times the discharge efficiency.
    """

    price_per_kwh: float | None = None
    import_percentile: float | None = 30.0

    def __post_init__(self) -> None:
        if (self.price_per_kwh is None) == (self.import_percentile is None):
            raise ValueError("end value: give exactly one of price_per_kwh and import_percentile")
        if self.import_percentile is not None and not 0 <= self.import_percentile <= 100:
            raise ValueError(f"end value: import_percentile out of range: {self.import_percentile!r}")
        if self.price_per_kwh is not None and not math.isfinite(self.price_per_kwh):
            raise ValueError(f"end value: price_per_kwh not finite: {self.price_per_kwh!r}")

    def per_stored_kwh(self, params: BatteryParams, import_price: FloatArray) -> float:
        if self.price_per_kwh is not None:
            price = self.price_per_kwh
        else:
            price = float(np.percentile(import_price, float(self.import_percentile or 0.0)))
        return price * params.discharge_efficiency


@dataclass(frozen=True, slots=True)
class PlanConstraints:
    """Policy limits on the plan.

    ``self_use_margin_per_kwh``: the first slot (the one acted on) departs from self-use only
    when that gains more than this per kWh of stored energy it moves differently. Under
    uncertain forecasts, trades on thin price spreads lose more when the forecast is wrong
    than they gain; a decision postponed is re-planned with newer data.
    """

    allow_grid_charge: bool = True
    allow_battery_export: bool = True
    self_use_margin_per_kwh: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.self_use_margin_per_kwh) and self.self_use_margin_per_kwh >= 0):
            raise ValueError(f"self_use_margin_per_kwh must be >= 0, got {self.self_use_margin_per_kwh!r}")


@dataclass(frozen=True)
class Horizon:
    """The per-slot inputs as arrays: slot length (h), forecasts (W), prices (currency/kWh)."""

    dt_h: FloatArray
    pv_w: FloatArray
    load_w: FloatArray
    import_price: FloatArray
    export_price: FloatArray

    def __post_init__(self) -> None:
        n = self.dt_h.size
        for name in ("dt_h", "pv_w", "load_w", "import_price", "export_price"):
            values = getattr(self, name)
            if values.ndim != 1 or values.size != n:
                raise ValueError(f"horizon.{name}: expected {n} values, got shape {values.shape}")
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise ValueError(f"horizon.{name}[{bad[0]}] is not finite: {values[bad[0]]!r}")
        if n == 0:
            raise ValueError("horizon is empty")
        if np.any(self.dt_h <= 0):
            raise ValueError(f"horizon.dt_h must be > 0, got {self.dt_h.min()!r}")


class PriceLike(Protocol):
    """A price slot [start, end) with all-in prices per kWh (e.g. drivers.prices' PriceSlot)."""

    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def import_price(self) -> float: ...
    @property
    def export_price(self) -> float: ...


def horizon_from_slots(
    prices: Sequence[PriceLike], pv_w: Sequence[float], load_w: Sequence[float]
) -> Horizon:
    """Arrays for :func:`solve`; the slots must be contiguous, timezone-aware and increasing."""
    if not prices:
        raise ValueError("prices: no slots to plan")
    for name, values in (("pv_w", pv_w), ("load_w", load_w)):
        if len(values) != len(prices):
            raise ValueError(f"{name}: {len(values)} values for {len(prices)} price slots")
    for i, slot in enumerate(prices):
        if slot.start.tzinfo is None or slot.end.tzinfo is None:
            raise ValueError(f"prices[{i}]: start/end must be timezone-aware, got {slot.start!r}")
        if slot.end <= slot.start:
            raise ValueError(
                f"prices[{i}]: end {slot.end.isoformat()} not after start {slot.start.isoformat()}"
            )
        if i and slot.start != prices[i - 1].end:
            raise ValueError(
                f"prices[{i}]: starts at {slot.start.isoformat()}, previous ends at {prices[i - 1].end.isoformat()}"
            )
    return Horizon(
        dt_h=np.array([(s.end - s.start).total_seconds() / 3600.0 for s in prices]),
        pv_w=np.asarray(pv_w, dtype=np.float64),
        load_w=np.asarray(load_w, dtype=np.float64),
        import_price=np.array([s.import_price for s in prices], dtype=np.float64),
        export_price=np.array([s.export_price for s in prices], dtype=np.float64),
    )


def inputs_digest(*parts: object, arrays: Sequence[FloatArray] = ()) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
    for values in arrays:
        h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]
