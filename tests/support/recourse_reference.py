"""The recourse planner's backward recursion as first written: every state scored on its own by
:func:`controller.planner.recourse._scores` (the straightforward form of one Bellman step), for
the tests that the vectorised recursion (controller.planner.recourse_values) gives the same values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.deterministic import SocGrid
from controller.planner.recourse_values import Slot

FloatArray = npt.NDArray[np.float64]


def reference_values(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    slots: Sequence[Slot],
    end_value_per_kwh: float,
) -> list[FloatArray]:
    """V[t] on the grid for t = 1..n, as :func:`controller.planner.recourse_values.values`."""
    value = (-end_value_per_kwh * grid.e)[None, :]
    values = [value]
    for t in range(len(slots) - 1, 0, -1):
        scores = recourse._scores(params, limits, grid, grid.e, value, slots[t])
        value = np.minimum(scores.self_use, scores.charge.min(axis=2))
        if scores.discharge.shape[2]:
            np.minimum(value, scores.discharge.min(axis=2), out=value)
        values.append(value)
    values.reverse()
    return values
