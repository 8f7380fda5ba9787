"""Noticing a load that does not follow its commands, from its power readings.

Each power reading of a load that is switched on (and should draw: a tank below its
thermostat's stop) counts: after ``unresponsive_readings`` readings below ``running_above_w`` the
command is sent again (``load.unresponsive``); after as many more the load is marked unreliable
(``load.unreliable``), left to its default and planned at its default, until
``unreliable_retry_min`` has passed (``load.retried``) or it is said to be reliable again.
No I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.control.load_model import should_draw
from controller.control.load_state import LoadEvent, LoadRuntime, running


def follow_reading(load: LoadRuntime, power_w: float, now: datetime) -> list[LoadEvent]:
    """A measured power of the load; the events it gives rise to."""
    name = load.config.name
    load.power_w, load.power_at = power_w, now
    sw = load.config.switch
    if not running(load.output) or power_w >= sw.running_above_w or not should_draw(load):
        load.readings_idle = 0
        return []
    load.readings_idle += 1
    if load.readings_idle == sw.unresponsive_readings and not load.commanded_again:
        load.commanded_again = True
        load.readings_idle = 0
        return [
            LoadEvent(
                name,
                "load.unresponsive",
                f"{name}: switched {load.output} but drawing {power_w:.0f} W; commanded again",
            )
        ]
    if load.readings_idle >= sw.unresponsive_readings and not load.unreliable:
        retry = sw.unreliable_retry_min
        mark_unreliable(load, now + timedelta(minutes=retry) if retry else None)
        return [
            LoadEvent(
                name,
                "load.unreliable",
                f"{name}: still drawing {power_w:.0f} W after being commanded again; "
                "left to its default and planned as not switchable",
            )
        ]
    return []


def mark_unreliable(load: LoadRuntime, until: datetime | None) -> None:
    """The load does not follow its commands: its default until ``until`` (None: until it is said
    to be reliable again)."""
    load.unreliable, load.unreliable_until = True, until


def reliable_again(load: LoadRuntime) -> None:
    load.unreliable, load.readings_idle, load.commanded_again = False, 0, False
    load.unreliable_until = None


def retried(load: LoadRuntime, now: datetime) -> LoadEvent | None:
    """The load's mark ended at ``now`` (its retry time has come): the event, the mark cleared."""
    if not (load.unreliable and load.unreliable_until is not None and now >= load.unreliable_until):
        return None
    reliable_again(load)
    name = load.config.name
    return LoadEvent(name, "load.retried", f"{name}: tried again after being marked unreliable")
