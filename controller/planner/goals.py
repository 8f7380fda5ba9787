"""Battery goals as the planners take them: lower bounds on the stored energy at slot boundaries.

Two kinds, both instants already resolved (``controller.control.goals`` turns the weekly and
one-off goals of the configuration and of the running daemon into these):

- a target, "80 % by 07:00": the SoC at the last slot boundary not after the instant;
- a reserve, "keep >= 50 % until 18:00" (storm mode): the SoC at every boundary up to the instant.

A bound is a cost on the states below it, not a wall: each kWh short at a boundary costs
``shortfall_per_kwh`` (far above any price of the horizon), added to the value of those states in
the planners' backward recursions. So a plan reaches a goal whenever the battery and the grid
allow it, and otherwise as much of it as they allow, and :func:`outcomes` says which it is.
Before a target, each kWh short costs a token ``EARLY_PER_KWH`` at every boundary: where the
prices leave it open when to charge (a flat tariff), the plan charges first and then holds, rather
than leave it to the last slots and re-decide it on every reading.
Without goals nothing is added and the plans are those of before, to the cent.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams

FloatArray = npt.NDArray[np.float64]
SHORTFALL_PRICE_FACTOR = 50.0  # a kWh short costs this many times the dearest price of the horizon
REACHED_TOLERANCE_PCT = 0.5  # a planned SoC this close to a goal reaches it (the grid's rounding)
EARLY_PER_KWH = 1e-5  # a tie-break, far below any price difference (module docstring)


@dataclass(frozen=True, slots=True)
class SocTarget:
    """The SoC to have reached by an instant."""

    soc_pct: float
    at: datetime

    def __post_init__(self) -> None:
        _check(self.soc_pct, self.at, "target")


@dataclass(frozen=True, slots=True)
class SocReserve:
    """The SoC not to go below until an instant (a backup reserve)."""

    soc_pct: float
    until: datetime

    def __post_init__(self) -> None:
        _check(self.soc_pct, self.until, "reserve")


def _check(soc_pct: float, when: datetime, kind: str) -> None:
    if not (math.isfinite(soc_pct) and 0 <= soc_pct <= 100):
        raise ValueError(f"{kind}.soc_pct must be within 0..100, got {soc_pct!r}")
    if when.tzinfo is None:
        raise ValueError(f"{kind}: the instant must be timezone-aware, got {when!r}")


@dataclass(frozen=True, slots=True)
class SocGoals:
    targets: tuple[SocTarget, ...] = ()
    reserves: tuple[SocReserve, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.targets or self.reserves)

    def reserve_at(self, now: datetime) -> float | None:
        """The highest reserve in force at ``now`` (None: none)."""
        held = [r.soc_pct for r in self.reserves if now < r.until]
        return max(held) if held else None


NO_GOALS = SocGoals()


@dataclass(frozen=True, slots=True)
class Floors:
    """The goals on a horizon: the least stored energy wanted at each of its n + 1 boundaries
    (the SoC window's floor where none is) and what a kWh short costs."""

    e_kwh: FloatArray
    shortfall_per_kwh: float
    early_kwh: FloatArray  # the next target's level at each boundary before it (tie-break only)

    def cost(self, e_grid: FloatArray) -> FloatArray:
        """The shortfall cost of each grid state at each boundary, (n + 1, states)."""
        short: FloatArray = np.maximum(self.e_kwh[:, None] - e_grid[None, :], 0.0)
        early: FloatArray = np.maximum(self.early_kwh[:, None] - e_grid[None, :], 0.0)
        return short * self.shortfall_per_kwh + early * EARLY_PER_KWH


def floors(
    goals: SocGoals,
    params: BatteryParams,
    boundaries: Sequence[datetime],
    prices: Sequence[float],
) -> Floors | None:
    """The goals' bounds at the horizon's boundaries (slot starts and the last end); None when no
    goal bounds any boundary after the first (the plan is then made as without goals)."""
    n = len(boundaries) - 1
    e = np.full(n + 1, params.e_min_kwh)
    early = np.full(n + 1, params.e_min_kwh)
    if n < 1:
        return None
    for target in goals.targets:
        if not boundaries[0] < target.at <= boundaries[-1]:
            continue
        k = _target_index(boundaries, target.at)
        level = params.energy_kwh(target.soc_pct)
        e[k] = max(e[k], level)
        early[1:k] = np.maximum(early[1:k], level)
    for reserve in goals.reserves:
        level = params.energy_kwh(reserve.soc_pct)
        for k in range(1, n + 1):
            if boundaries[k] > reserve.until:
                break
            e[k] = max(e[k], level)
    np.clip(e, params.e_min_kwh, params.e_max_kwh, out=e)
    np.clip(early, params.e_min_kwh, params.e_max_kwh, out=early)
    if not np.any(e[1:] > params.e_min_kwh + 1e-9):
        return None
    dearest = max((abs(p) for p in prices), default=0.0)
    return Floors(e, SHORTFALL_PRICE_FACTOR * (1.0 + dearest), early)


@dataclass(frozen=True, slots=True)
class GoalOutcome:
    """What the plan makes of one goal: the SoC it plans there (a reserve: its lowest)."""

    kind: str  # "target" | "reserve"
    soc_pct: float
    at: datetime  # the target's instant, the reserve's end
    planned_pct: float
    reached: bool

    def text(self, tz: tzinfo) -> str:
        when = _clock(self.at, tz)
        if self.kind == "target":
            goal = f"target {self.soc_pct:.0f} % by {when}"
        else:
            goal = f"reserve {self.soc_pct:.0f} % until {when}"
        if self.reached:
            return f"{goal}: planned"
        lowest = "reaches" if self.kind == "target" else "keeps"
        return f"{goal}: not reachable, the plan {lowest} {self.planned_pct:.0f} % (battery or grid limits)"


def _clock(t: datetime, tz: tzinfo) -> str:
    return t.astimezone(tz).strftime("%H:%M")


def outcomes(
    goals: SocGoals, boundaries: Sequence[datetime], soc_pct: Sequence[float]
) -> tuple[GoalOutcome, ...]:
    """Each goal that bears on the horizon against the planned SoC at its boundaries."""
    out: list[GoalOutcome] = []
    last = len(boundaries) - 1
    for target in goals.targets:
        if not boundaries[0] < target.at <= boundaries[-1]:
            continue
        k = _target_index(boundaries, target.at)
        planned = soc_pct[k]
        out.append(
            GoalOutcome("target", target.soc_pct, target.at, planned, _reached(planned, target.soc_pct))
        )
    for reserve in goals.reserves:
        held = [soc_pct[k] for k in range(1, last + 1) if boundaries[k] <= reserve.until]
        if not held or reserve.until <= boundaries[0]:
            continue
        # below the reserve at the start, the plan charges up to it: judged from when it gets there
        first = next((i for i, soc in enumerate(held) if _reached(soc, reserve.soc_pct)), None)
        kept = held if first is None else held[first:]
        lowest = max(held) if first is None else min(kept)
        met = first is not None and _reached(lowest, reserve.soc_pct)
        out.append(GoalOutcome("reserve", reserve.soc_pct, reserve.until, lowest, met))
    return tuple(out)


def _target_index(boundaries: Sequence[datetime], at: datetime) -> int:
    """The boundary a target bears on: the last one not after its instant, never the first (now)."""
    return max(1, bisect.bisect_right(boundaries, at) - 1)


def _reached(planned: float, wanted: float) -> bool:
    return planned >= wanted - REACHED_TOLERANCE_PCT


def annotate(
    lines: list[str],
    goals: SocGoals,
    starts: Sequence[datetime],
    battery_w: Sequence[float],
    soc_end_pct: Sequence[float],
    end: datetime,
    tz: tzinfo,
) -> list[str]:
    """The slots' explanations with the goal each charging or holding slot serves (``end``: the
    horizon's)."""
    if not goals:
        return lines
    out = list(lines)
    for i, start in enumerate(starts):
        ahead = (t for t in goals.targets if start < t.at <= end)
        target = min(ahead, key=lambda t: t.at, default=None)
        reserve = max((r for r in goals.reserves if r.until > start), key=lambda r: r.soc_pct, default=None)
        if (
            battery_w[i] < -1.0
            and target is not None
            and soc_end_pct[i] <= target.soc_pct + REACHED_TOLERANCE_PCT
        ):
            out[i] = f"charging to reach {target.soc_pct:.0f} % by {_clock(target.at, tz)}: {out[i]}"
        elif (
            abs(battery_w[i]) <= 1.0
            and target is not None
            and soc_end_pct[i] >= target.soc_pct - REACHED_TOLERANCE_PCT
        ):
            out[i] = f"keeping {target.soc_pct:.0f} % for {_clock(target.at, tz)}: {out[i]}"
        elif reserve is not None and soc_end_pct[i] <= reserve.soc_pct + REACHED_TOLERANCE_PCT:
            out[i] = (
                f"keeping the {reserve.soc_pct:.0f} % backup reserve until {_clock(reserve.until, tz)}: {out[i]}"
            )
    return out
