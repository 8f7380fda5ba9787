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
order, ``after`` beyond) is least is kept.

Only the horizon is seen: the export the rest of the year will bring is not counted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from controller.planner.plan import Plan
from controller.settlement.prices import ExportRoom

FloatArray = npt.NDArray[np.float64]
CROSSINGS = 2  # plans with the price falling where the plan before crossed the room
PASSES = 5  # bisection steps on one share for the whole year's slots
ROOM_TOLERANCE_KWH = 1e-6


def exported_within(plan: Plan, room: ExportRoom) -> FloatArray:
    """The plan's export (kWh) in each of the room's slots (0 elsewhere)."""
    kwh = np.array([max(-s.grid_w, 0.0) * (s.end - s.start).total_seconds() / 3.6e6 for s in plan.slots])
    out: FloatArray = np.where(room.within, kwh, 0.0)
    return out


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


def billed_objective(plan: Plan, room: ExportRoom, export_price: FloatArray) -> float:
    """The plan's objective with its export in the room's slots valued as the bill values it."""
    exported = exported_within(plan, room)
    seen = np.array([s.export_price for s in plan.slots])
    paid = exported * paid_share(exported, room)
    billed = float((paid * export_price + (exported - paid) * room.after).sum())
    return plan.objective + float((exported * seen).sum()) - billed


def plan_within_room(make: Callable[[FloatArray], Plan], export_price: FloatArray, room: ExportRoom) -> Plan:
    """The plan against the room (see the module docstring); ``make(prices)`` plans with the
    slots' export prices replaced by ``prices``."""
    if export_price.shape != room.within.shape:
        raise ValueError(f"export_price: {export_price.shape} slots for a room of {room.within.shape}")
    full = make(export_price)
    if exported_within(full, room).sum() <= room.kwh + ROOM_TOLERANCE_KWH:
        return full
    made = [full]
    for _ in range(CROSSINGS):
        made.append(make(priced(export_price, room, paid_share(exported_within(made[-1], room), room))))
    made.append(make(priced(export_price, room, 0.0)))
    if exported_within(made[-1], room).sum() < room.kwh:
        low, high = 0.0, 1.0
        for _ in range(PASSES):
            share = (low + high) / 2.0
            made.append(make(priced(export_price, room, share)))
            if exported_within(made[-1], room).sum() > room.kwh:
                high = share
            else:
                low = share
    return min(made, key=lambda p: billed_objective(p, room, export_price))
