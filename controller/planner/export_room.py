"""Planning against a yearly feed-in cap: the export the plan is paid for is bounded by the room
left of the cap this year (:func:`controller.settlement.prices.export_room`).

The bill pays exported energy in time order until the year's cap is reached, and nothing
beyond. A plan that stays within the room is planned as before, at the feed-in price. A plan
that would cross it is planned again with the export price it sees falling to the post-cap
value (nothing) from the slot where its export crosses the room (the crossing slot at the share
still paid), twice, as the crossing moves. That price makes exporting early look better than
it is (a kWh exported before the crossing moves the crossing earlier, and is paid instead of a
later one, not besides it), so the planners are also given one export price for all the year's
slots, ``after + share x (price - after)``: the post-cap value (``share`` 0), and where the plan
then exports less than the room, the share at which its export meets the room, by bisection.
Of the plans made, the one whose cost as the bill counts it (export paid up to the room in time
order, ``after`` beyond) is least is kept. With nothing left of the cap the one plan made is at
the post-cap value, which is then what the bill pays.

Under a capacity charge as well, each plan is made by the peak search
(:mod:`controller.planner.peak`), and its objective counts what it raises the month's peak by.

Only the horizon is seen: the export the rest of the year will bring is not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from controller.planner.plan import Plan
from controller.settlement.prices import ExportRoom

FloatArray = npt.NDArray[np.float64]
CROSSINGS = 2  # plans with the price falling where the plan before crossed the room
PASSES = 5  # bisection steps on one share for the whole year's slots
ROOM_TOLERANCE_KWH = 1e-6
P = TypeVar("P")


@dataclass(frozen=True, eq=False)
class Made(Generic[P]):
    """A plan made at ``seen`` export prices: its export (kWh) per slot and its objective."""

    plan: P
    seen: FloatArray
    exported_kwh: FloatArray
    objective: float


def paid_share(exported: FloatArray, room: ExportRoom) -> FloatArray:
    """Per slot, the share of its export the bill pays: all of it until the room is used up
    in time order, the part that fits in the crossing slot, none after (outside the room's
    slots: all)."""
    counted = np.where(room.within, exported, 0.0)
    before = np.cumsum(counted) - counted
    left = np.maximum(room.kwh - before, 0.0)
    share: FloatArray = np.where(
        counted > 0, np.minimum(left / np.where(counted > 0, counted, 1.0), 1.0), (left > 0) * 1.0
    )
    out: FloatArray = np.where(room.within, share, 1.0)
    return out


def priced(export_price: FloatArray, room: ExportRoom, share: FloatArray | float) -> FloatArray:
    """The export prices with those of the room's slots at ``share`` of the way from the
    post-cap value to their own."""
    out: FloatArray = np.where(room.within, room.after + share * (export_price - room.after), export_price)
    return out


def billed_objective(made: Made[P], room: ExportRoom, export_price: FloatArray) -> float:
    """A plan's objective with its export in the room's slots valued as the bill values it."""
    exported = np.where(room.within, made.exported_kwh, 0.0)
    paid = exported * paid_share(exported, room)
    billed = float((paid * export_price + (exported - paid) * room.after).sum())
    return made.objective + float((exported * made.seen).sum()) - billed


def within_room(make: Callable[[FloatArray], Made[P]], export_price: FloatArray, room: ExportRoom) -> P:
    """The plan against the room (see the module docstring); ``make(prices)`` plans with the
    slots' export prices replaced by ``prices``."""
    if export_price.shape != room.within.shape:
        raise ValueError(f"export_price: {export_price.shape} slots for a room of {room.within.shape}")

    def within(m: Made[P]) -> float:
        return float(np.where(room.within, m.exported_kwh, 0.0).sum())

    if room.kwh <= ROOM_TOLERANCE_KWH:
        # nothing left: the post-cap value is what the bill pays for every kWh of the year's slots
        return make(priced(export_price, room, 0.0)).plan
    made = [make(export_price)]
    if within(made[0]) <= room.kwh + ROOM_TOLERANCE_KWH:
        return made[0].plan
    for _ in range(CROSSINGS):
        made.append(make(priced(export_price, room, paid_share(made[-1].exported_kwh, room))))
    made.append(make(priced(export_price, room, 0.0)))
    if within(made[-1]) < room.kwh:
        low, high = 0.0, 1.0
        for _ in range(PASSES):
            share = (low + high) / 2.0
            made.append(make(priced(export_price, room, share)))
            if within(made[-1]) > room.kwh:
                high = share
            else:
                low = share
    return min(made, key=lambda m: billed_objective(m, room, export_price)).plan


def made_plan(plan: Plan) -> Made[Plan]:
    """A plan of the planners with its slots' export prices, export and objective."""
    seen = np.array([s.export_price for s in plan.slots])
    kwh = np.array([max(-s.grid_w, 0.0) * (s.end - s.start).total_seconds() / 3.6e6 for s in plan.slots])
    return Made(plan, seen, kwh, plan.objective)
