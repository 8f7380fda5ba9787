"""Whether the plan meets a load's requirement, and why not, in words ("" when it does).

A requirement (:mod:`controller.loads.requirement`, each of its occurrences the plan reaches)
is out of reach when:

- the load is disabled or marked unreliable: hemsd leaves it to its own default, which no
  requirement binds;
- an appliance's run (what is left of it) does not fit between now and its time, or the plan
  has no room for it there (less than ``PLANNED_SHARE`` of the run's energy planned in its
  window);
- a store's planned temperature at its time stays below the one asked for (its element cannot
  heat it so far in time).

Without a plan nothing is judged (the plan made next says). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from controller.config.loads import (
    PROFILE_STEP_MIN,
    ApplianceConfig,
    HeatPumpConfig,
    LoadConfig,
    WaterHeaterConfig,
)
from controller.loads.appliance import ApplianceState
from controller.loads.joint import LoadSchedule
from controller.loads.requirement import REACHED_K, Requirement, occurrences, slot_of

PLANNED_SHARE = 0.95  # a run counts as planned when this share of its energy is


def unmet(
    config: LoadConfig,
    requirement: Requirement | None,
    *,
    enabled: bool,
    unreliable: bool,
    schedule: LoadSchedule | None,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    appliance: ApplianceState,
    now: datetime,
    tz: tzinfo,
) -> str:
    """Why the plan (``schedule`` over the slots ``starts``-``ends``) does not meet the load's
    requirement; "" when it does, or there is none or no plan."""
    if requirement is None:
        return ""
    asked = f"{config.name} {requirement.describe(tz)}"
    if not enabled:
        return f"{asked}: {config.name} is disabled, left to its own default"
    if unreliable:
        return f"{asked}: {config.name} does not follow its commands, left to its default"
    if schedule is None or not starts:
        return ""
    for index, each in enumerate(occurrences(requirement)):
        if each.by > ends[-1]:
            break  # the plans that reach it will say
        asked = f"{config.name} {each.describe(tz)}"
        if isinstance(config, ApplianceConfig):
            why = _run_unmet(config, each, schedule, starts, ends, appliance if index == 0 else None, now, tz)
        else:
            why = _store_unmet(config, each, schedule, ends)
        if why:
            return f"{asked}: {why}"
    return ""


def _run_unmet(
    config: ApplianceConfig,
    req: Requirement,
    schedule: LoadSchedule,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    state: ApplianceState | None,
    now: datetime,
    tz: tzinfo,
) -> str:
    duration = timedelta(minutes=config.duration_w_min())
    left = duration
    if state is not None and state.started_at is not None and req.start <= state.started_at < req.by:
        left = max(state.started_at + duration - now, timedelta(0))
    elif state is not None and config.interruptible:
        left = max(duration - timedelta(hours=state.ran_h), timedelta(0))
    if left <= timedelta(0):
        return ""
    first = max(req.start, now)
    if first + left > req.by:
        return f"{_minutes(left)} min of its run do not fit before {req.by.astimezone(tz):%H:%M}"
    planned_wh = 0.0
    for start, end, power in zip(starts, ends, schedule.power_w, strict=False):
        overlap = (min(end, req.by) - max(start, first)).total_seconds()
        if overlap > 0:
            planned_wh += power * overlap / 3600.0
    profile = config.profile()
    needed_wh = sum(profile) * PROFILE_STEP_MIN / 60.0 * (left / duration)
    if planned_wh < PLANNED_SHARE * needed_wh:
        return f"the plan has no room for its run before {req.by.astimezone(tz):%H:%M}"
    return ""


def _store_unmet(
    config: LoadConfig, req: Requirement, schedule: LoadSchedule, ends: Sequence[datetime]
) -> str:
    if req.temperature_c is None:
        return ""
    index = slot_of(req, list(ends))
    if index is None or index + 1 >= len(schedule.temperature_c):
        return ""
    reached = schedule.temperature_c[index + 1]
    if reached >= req.temperature_c - REACHED_K:
        return ""
    if isinstance(config, WaterHeaterConfig):
        return f"the plan reaches {reached:.1f} degC then: its {config.element_w / 1000:g} kW element is too small"
    power = config.electric_w if isinstance(config, HeatPumpConfig) else 0.0
    return f"the plan reaches {reached:.1f} degC then: {power / 1000:g} kW cannot heat it so far in time"


def _minutes(span: timedelta) -> int:
    return round(span.total_seconds() / 60.0)
