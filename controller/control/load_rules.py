"""The switching rules of one load: what it is to do now, how long it is held, and its run's progress.

- with a fresh plan, the load's planned state in the slot of now (a store's element planned for
  part of a slot runs that share at its start, or, in a slot longer than a quarter-hour, at the
  start of each of its parts, :func:`pieces`; a heat pump, boosted or left ``normal`` to its
  own thermostat for part of one, is blocked between and after them); an optional surplus-only appliance whose window is open
  also starts when the house exports its power now (a surplus the forecast missed);
- a store measured (a fresh reading) more than ``COLD_MARGIN_K`` under its minimum: its default,
  its own thermostat, whatever the plan says (a plan that failed, or a draw beyond its guard);
- without one, disabled, or unreliable: its default, a tank's or a heat pump's own thermostat
  (``on``/``normal``), an appliance's run at the user's time, or at once when a requirement asks
  for a run;
- a run that cannot be interrupted goes on to its end once started; an appliance stays on and
  off for its minimum times, a thermal store for ``MIN_DWELL``.

No I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from controller.config.loads import ApplianceConfig, HeatPumpConfig, WaterHeaterConfig
from controller.control.load_model import rated_w, temperature_fresh
from controller.control.load_state import LoadRuntime, default_output, running
from controller.loads.appliance import ApplianceState, default_start, windows
from controller.loads.joint import LoadPlan, LoadSchedule
from controller.loads.thermal import MIN_RUN_MIN, pieces_count

MIN_DWELL = timedelta(minutes=MIN_RUN_MIN)  # a thermal store's output is kept at least this long
COLD_MARGIN_K = 0.5  # a store measured this far under its minimum is left to its own thermostat
SURPLUS_SHARE = 0.9  # an unforecast surplus starts an optional load when it covers this share
PLANNED_W = 1.0  # a heat pump left normal is planned to run in a slot above this mean power


def wanted(
    load: LoadRuntime,
    now: datetime,
    plan: LoadPlan | None,
    schedule: LoadSchedule | None,
    net_w: float | None,
    tz: tzinfo,
) -> tuple[str, str]:
    """The output the load is to have now, and why (before its minimum times)."""
    c = load.config
    if load.unreliable:
        return default_now(load, now, tz), f"{c.name}: does not follow its commands, its default"
    if isinstance(c, ApplianceConfig) and load.appliance.started_at is not None:
        return "on", f"{c.name}: a run goes on to its end"
    if not load.enabled:
        return default_now(load, now, tz), f"{c.name}: disabled, its default"
    if plan is None or schedule is None:
        return default_now(load, now, tz), f"{c.name}: no plan, its default"
    index = next((i for i, s in enumerate(plan.plan.slots) if s.start <= now < s.end), None)
    if index is None:
        return default_now(load, now, tz), f"{c.name}: the plan does not cover now, its default"
    if (
        not isinstance(c, ApplianceConfig)
        and load.temperature_c is not None
        and temperature_fresh(load, now)
        and load.temperature_c < c.min_c - COLD_MARGIN_K
    ):
        measured = f"{load.temperature_c:.1f} degC measured, under its minimum {c.min_c:g}"
        return default_output(c), f"{c.name}: {measured}: its own thermostat"
    output = schedule.states[index]
    if (
        output == "off"
        and isinstance(c, ApplianceConfig)
        and c.optional
        and c.surplus_only
        and net_w is not None
        and window_open(load, now, tz)
        and -net_w >= SURPLUS_SHARE * max(c.profile())
    ):
        return "on", f"{c.name}: {-net_w:.0f} W exported now, more than forecast"
    if isinstance(c, ApplianceConfig) and running(output) and not window_open(load, now, tz):
        return "off", f"{c.name}: no run due now (its window's run is done)"
    heats = running(output) or (output == "normal" and schedule.power_w[index] > PLANNED_W)
    if heats and not isinstance(c, ApplianceConfig):
        # a store's element planned for part of the slot runs its pieces of it, each switched
        # off at the first tick after it: the plan heats just enough, so stopping sooner would
        # leave the store below its minimum. A heat pump left to its thermostat, or let back to
        # it while running, would run on to its setpoint: it is blocked between and after them
        slot = plan.plan.slots[index]
        runs = pieces(c, slot.start, slot.end, schedule.power_w[index])
        if not any(a <= now < b for a, b in runs):
            after = "block" if isinstance(c, HeatPumpConfig) else "off"
            nxt = next((a for a, _ in runs if a > now), None)
            why = (
                "its share of the slot done"
                if nxt is None
                else f"its next piece at {nxt.astimezone(tz):%H:%M}"
            )
            return after, f"{schedule.reason} ({why})"
    return output, schedule.reason


def pieces(
    c: WaterHeaterConfig | HeatPumpConfig, start: datetime, end: datetime, power_w: float
) -> tuple[tuple[datetime, datetime], ...]:
    """When a store planned at the mean power ``power_w`` over the slot ``[start, end)`` runs
    (its element or pump at its rated power): its share of the slot at the start of each of k
    equal parts of it (:func:`~controller.loads.thermal.pieces_count`: one per quarter-hour at
    most, each piece and each pause ``MIN_DWELL`` at least, else one from the slot's start). A store
    held near its minimum overshoots it by what one piece heats and loses on the overshoot:
    pieces no longer apart than in quarter-hour slots lose as little as the daemon's plans."""
    length = end - start
    share = min(max(power_w, 0.0) / rated_w(c), 1.0)
    on = share * length
    k = int(pieces_count(length / timedelta(minutes=1), share))
    part = length / k
    return tuple((start + j * part, start + j * part + on / k) for j in range(k))


def window_open(load: LoadRuntime, now: datetime, tz: tzinfo) -> bool:
    """Is an appliance's run due now: a window (or its requirement's) open with its run not done."""
    c = load.config
    if not isinstance(c, ApplianceConfig):
        return False
    done = load.appliance.done_until
    duration = timedelta(minutes=c.duration_w_min())
    req = load.requirement
    if req is not None and req.temperature_c is None and req.start <= now < req.by:
        return True
    if c.repeat == "request" and not load.appliance.requested:
        return False
    return any(
        w.start <= now and now + duration <= w.end and (done is None or w.end > done)
        for w in windows(c, now, now + timedelta(minutes=1), tz)
    )


def default_now(load: LoadRuntime, now: datetime, tz: tzinfo) -> str:
    """The load's default output now: a store's thermostat, an appliance's run at the user's time
    (or, where that time passed without the run, at the last start that ends it in its window)."""
    c = load.config
    if not isinstance(c, ApplianceConfig):
        return default_output(c)
    req = load.requirement
    if req is not None and req.temperature_c is None and req.start <= now < req.by:
        return "on"  # a run asked for, without hemsd to place it: at once
    duration = timedelta(minutes=c.duration_w_min())
    for w in windows(c, now, now + timedelta(minutes=1), tz):
        if load.appliance.done_until is not None and w.end <= load.appliance.done_until:
            continue
        if c.repeat != "daily" and not load.appliance.requested:
            continue
        start = default_start(c, w, tz)
        if start <= now < start + duration:
            return "on"
        # past its time and not done (hemsd had moved it, then its plan went): the last start
        # that still ends the run by the window's end
        if now >= start + duration and w.end - duration <= now < w.end:
            return "on"
    return "off"


def held_for(load: LoadRuntime) -> timedelta:
    """How long the load's output is kept once switched: an appliance's minimum on or off time,
    a thermal store's ``MIN_DWELL``."""
    c = load.config
    if isinstance(c, ApplianceConfig):
        return timedelta(minutes=c.min_on_min if running(load.output) else c.min_off_min)
    return MIN_DWELL


def kept(load: LoadRuntime, now: datetime, output: str, reason: str) -> tuple[str, str]:
    """The output, unless the load must stay as it is a while longer."""
    if output == load.output:
        return output, reason
    c = load.config
    if load.since is not None and now - load.since < held_for(load):
        return load.output, f"{c.name}: kept {load.output} for its minimum time"
    return output, reason


def switch(load: LoadRuntime, output: str, now: datetime) -> None:
    """The load switched to ``output`` (a run that cannot be interrupted starts)."""
    c = load.config
    starts = running(output) and not running(load.output)
    if (
        isinstance(c, ApplianceConfig)
        and starts
        and load.appliance.started_at is None
        and not c.interruptible
    ):
        load.appliance = replace(load.appliance, started_at=now)
    load.output, load.since = output, now
    load.readings_idle, load.commanded_again = 0, False


def advance_run(load: LoadRuntime, now: datetime, dt_h: float, tz: tzinfo) -> bool:
    """Move an appliance's run on by ``dt_h`` hours; whether a required run was done."""
    c = load.config
    if not isinstance(c, ApplianceConfig):
        return False
    st = load.appliance
    req = load.requirement
    if st.started_at is not None and now >= st.started_at + timedelta(minutes=c.duration_w_min()):
        # the windows the run was in (a required run's: those its requirement overlaps)
        required = req is not None and req.start <= st.started_at < req.by
        first, last = (
            (req.start, req.by)
            if req is not None and required
            else (st.started_at, st.started_at + timedelta(minutes=1))
        )
        ended = [w.end for w in windows(c, first, last, tz)]
        load.appliance = ApplianceState(done_until=max(ended, default=now), requested=False)
        if required:
            load.requirement = None
        return required
    if c.interruptible and running(load.output):
        load.appliance = replace(st, ran_h=st.ran_h + dt_h)
        if load.appliance.ran_h >= c.duration_w_min() / 60.0 - 1e-9:
            # the window's run is done: the next window's starts from nothing
            required = req is not None and req.start <= now <= req.by
            first, last = (req.start, req.by) if req is not None and required else (now, now)
            ended = [w.end for w in windows(c, first, last + timedelta(minutes=1), tz)]
            load.appliance = ApplianceState(done_until=max(ended, default=now))
            if required:
                load.requirement = None
            return required
        return False
    if c.interruptible and st.ran_h > 0 and not _in_window(c, load, now, tz):
        load.appliance = replace(st, ran_h=0.0)  # its window closed on a part of the run
    return False


def _in_window(c: ApplianceConfig, load: LoadRuntime, now: datetime, tz: tzinfo) -> bool:
    req = load.requirement
    if req is not None and req.start <= now < req.by:
        return True
    return bool(windows(c, now, now + timedelta(minutes=1), tz))
