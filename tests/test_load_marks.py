"""A load that does not follow its commands: marked unreliable, planned at its default, the mark
kept across a restart with when it is tried again, and tried again then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.forecaster_fixtures import SettableClock, data_manager
from test_loads_plan import START, config, day_inputs

from controller.daemon.load_marks import MARKS_KEY
from controller.daemon.loads import LoadLink
from controller.loads.inputs import make_load_plan

POOL = """
[[loads]]
name = "pool"
type = "appliance"
power_w = 1000
duration_min = 120
earliest_start = "06:00"
latest_end = "20:00"
default_start = "09:00"
[loads.switch]
power_topic = "tele/pool/SENSOR"
unresponsive_readings = 2
unreliable_retry_min = 90
"""
AT_NINE = datetime(2026, 4, 11, 7, 0, tzinfo=UTC)  # 09:00 in Warsaw: the pool's own time


def plan_reason(link: LoadLink) -> str:
    """The pool's reason in a plan made as the daemon makes it (its loads at their defaults where
    the switcher says so)."""
    cfg = config(POOL)
    slots, pv, load = day_inputs()
    plan = make_load_plan(
        cfg, 50.0, slots, pv, load, START, None, link.switcher.states(), link.switcher.at_default()
    )
    return plan.loads[0].reason


async def test_an_unreliable_load_is_planned_at_its_default_across_a_restart_until_tried_again(
    tmp_path: Path,
) -> None:
    cfg = config(POOL)
    clock = SettableClock(AT_NINE)
    async with data_manager(tmp_path, clock) as data:
        link = LoadLink(cfg, data, clock)
        await link.marks.restore()
        assert "cheapest 2 h before 20:00" in plan_reason(link)
        await link.tick()  # no plan: its default, on at 09:00
        assert link.switcher.loads["pool"].output == "on"
        for k in range(4):
            clock.now = AT_NINE + timedelta(minutes=k)
            link.listen["tele/pool/SENSOR"]("tele/pool/SENSOR", b"0")
        await link.tick()
        assert link.switcher.at_default() == {"pool"}
        assert plan_reason(link) == "pool: at its default time"
        until = AT_NINE + timedelta(minutes=3 + 90)
        assert await data.get_state(MARKS_KEY) == {"pool": until.isoformat()}
        events = await data.events(kinds=("load.unresponsive", "load.unreliable"))
        assert sorted(e.kind for e in events) == ["load.unreliable", "load.unresponsive"]

    # a restart: the mark is read back, with its end
    clock.now = AT_NINE + timedelta(minutes=30)
    async with data_manager(tmp_path, clock) as data:
        again = LoadLink(cfg, data, clock)
        await again.marks.restore()
        assert again.switcher.marks() == {"pool": until}
        assert again.switcher.at_default() == {"pool"}
        await again.tick()
        state = again.switcher.payload("pool", clock.now)
        assert state.reliable is False
        assert state.unreliable_until == until.isoformat()
        # its time up, it is tried again: planned and switched as before, the mark gone
        clock.now = until
        await again.tick()
        assert again.switcher.at_default() == set()
        assert "cheapest 2 h before 20:00" in plan_reason(again)
        assert await data.get_state(MARKS_KEY) == {}
        assert [e.kind for e in await data.events(kinds=("load.retried",))] == ["load.retried"]


async def test_a_mark_without_an_end_waits_for_home_assistant_and_a_bad_one_is_dropped(
    tmp_path: Path,
) -> None:
    cfg = config(POOL.replace("unreliable_retry_min = 90", "unreliable_retry_min = 0"))
    clock = SettableClock(AT_NINE)
    async with data_manager(tmp_path, clock) as data:
        await data.put_state(MARKS_KEY, {"pool": None, "garage": None})
        link = LoadLink(cfg, data, clock)
        await link.marks.restore()
        assert link.switcher.marks() == {"pool": None}
        clock.now = AT_NINE + timedelta(days=3)
        await link.tick()
        assert link.switcher.at_default() == {"pool"}
        link.switcher.reliable_again("pool")  # Home Assistant's "reliable again"
        await link.tick()
        assert await data.get_state(MARKS_KEY) == {}
        await data.put_state(MARKS_KEY, {"pool": "soon"})
        fresh = LoadLink(cfg, data, clock)
        await fresh.marks.restore()
        assert fresh.switcher.marks() == {}
