"""A load's requirement set at run time, as the placement takes it.

An appliance's is a run in [``start``, ``by``): it stands for the configured windows it
overlaps (their run is this one) and runs whatever an optional appliance's price cap says (it
was asked for). A thermal store's is ``temperature_c`` or warmer at the end of the last slot
that ends by ``by`` (the first slot's end when ``by`` lies within it); beyond the horizon it
waits for the plans that reach it. A weekly requirement's later occurrences within the plans'
reach ride on the first (``later``): each is held as the first is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
REACHED_K = 0.1  # a store within this of its required temperature has reached it


@dataclass(frozen=True, slots=True)
class Requirement:
    start: datetime
    by: datetime
    temperature_c: float | None = None  # None: an appliance's run
    later: tuple[Requirement, ...] = ()  # the load's next ones, by their time

    def describe(self, tz: tzinfo) -> str:
        by = f"{self.by.astimezone(tz):%H:%M}"
        return f"done by {by}" if self.temperature_c is None else f"{self.temperature_c:g} degC by {by}"


def occurrences(requirement: Requirement | None) -> tuple[Requirement, ...]:
    """The requirement and the ones after it."""
    return () if requirement is None else (requirement, *requirement.later)


def overlaps(requirement: Requirement, start: datetime, end: datetime) -> bool:
    return start < requirement.by and end > requirement.start


def slot_of(requirement: Requirement, ends: tuple[datetime, ...] | list[datetime]) -> int | None:
    """The slot at whose end a store's requirement is held (None: beyond the horizon)."""
    if requirement.by > ends[-1]:
        return None
    done = [i for i, end in enumerate(ends) if end <= requirement.by]
    return done[-1] if done else 0


def floor_c(
    requirement: Requirement | None, ends: tuple[datetime, ...] | list[datetime]
) -> FloatArray | None:
    """The lowest temperature at each slot's end a store's requirement asks for (-inf elsewhere)."""
    out = np.full(len(ends), -np.inf)
    for each in occurrences(requirement):
        index = None if each.temperature_c is None else slot_of(each, ends)
        if index is not None and each.temperature_c is not None:
            out[index] = max(out[index], each.temperature_c)
    return out if np.any(np.isfinite(out)) else None
