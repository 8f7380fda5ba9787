"""An appliance left to its default (no plan, disabled, unreliable) runs where the plan counts
it to run at its default: at its ``default_start`` where the run fits in its window, else at
the window's start; a default time outside the window, or in the night's DST gap, never leaves
a daily run out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.config.loading import load_config_text
from controller.control.loads import LoadSwitcher
from controller.loads.inputs import make_load_plan
from controller.planner.inputs import PricedSlot

MIDNIGHT = datetime(2026, 4, 10, 22, 0, tzinfo=UTC)  # 11 April, 00:00 in Warsaw
DST_NIGHT = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 29 March, 00:00 CET: 02:00-03:00 does not exist


def pool(earliest: str, latest: str, default: str, minutes: int) -> str:
    return (
        f'[mqtt]\nhost = "127.0.0.1"\n[[loads]]\nname = "pool"\ntype = "appliance"\npower_w = 1000\n'
        f'duration_min = {minutes}\nearliest_start = "{earliest}"\nlatest_end = "{latest}"\n'
        f'default_start = "{default}"\n'
    )


def switched_on(text: str, start: datetime, hours: int) -> list[datetime]:
    """The quarter-hours the switcher, without a plan, has the pool on."""
    config = load_config_text(text)
    switcher = LoadSwitcher(config.loads, config.site.zone)
    on: set[datetime] = set()
    now = start
    while now < start + timedelta(hours=hours):
        switcher.tick(now, None, None)
        if switcher.loads["pool"].output == "on":
            on.add(now.replace(minute=now.minute - now.minute % 15))
        now += timedelta(minutes=1)
    return sorted(on)


def planned_on(text: str, start: datetime, hours: int) -> list[datetime]:
    """The quarter-hours a plan with the pool at its default has it on."""
    config = load_config_text(text)
    slots = [
        PricedSlot(start + timedelta(minutes=15 * i), start + timedelta(minutes=15 * (i + 1)), 0.5, 0.1)
        for i in range(hours * 4)
    ]
    n = len(slots)
    plan = make_load_plan(config, 50.0, slots, [0.0] * n, [400.0] * n, start, None, {}, {"pool"})
    schedule = plan.loads[0]
    return [s.start for s, w in zip(slots, schedule.power_w, strict=True) if w > 0]


@pytest.mark.parametrize(
    ("window", "first_on"),
    [
        (("06:00", "20:00", "09:00", 120), "09:00"),  # the user's time
        (("06:00", "20:00", "19:30", 120), "06:00"),  # would end after 20:00: the window's start
        (("06:00", "20:00", "03:00", 120), "06:00"),  # before the window
        (("06:00", "20:00", "20:00", 120), "06:00"),  # at its end
        (("19:00", "07:00", "02:00", 90), "02:00"),  # a window over midnight
    ],
)
def test_the_default_run_is_where_the_plan_counts_it(
    window: tuple[str, str, str, int], first_on: str
) -> None:
    text = pool(*window)
    on = switched_on(text, MIDNIGHT, 48)
    assert on == planned_on(text, MIDNIGHT, 48)
    assert len(on) == 2 * window[3] // 15  # a run a day
    assert f"{on[0].astimezone(load_config_text(text).site.zone):%H:%M}" == first_on


def test_a_default_time_in_the_dst_gap_still_runs_that_night() -> None:
    text = pool("01:30", "03:30", "02:30", 30)  # 02:30 does not exist on 29 March
    on = switched_on(text, DST_NIGHT, 24)
    assert on == planned_on(text, DST_NIGHT, 24)
    assert on == [DST_NIGHT + timedelta(minutes=90), DST_NIGHT + timedelta(minutes=105)]  # 01:30 CET


def test_a_run_past_its_default_time_and_not_done_runs_last_thing_in_its_window() -> None:
    """hemsd had moved the day's run past the user's time, then its plan went (no prices, disabled,
    hemsd restarted with the run not done): the run starts at the last moment that still ends it
    by the window's end, not never."""
    text = pool("06:00", "20:00", "09:00", 120)
    noon = MIDNIGHT + timedelta(hours=12)  # 12:00 in Warsaw, the run not done
    on = switched_on(text, noon, 12)
    tz = load_config_text(text).site.zone
    assert [f"{t.astimezone(tz):%H:%M}" for t in on] == [
        "18:00", "18:15", "18:30", "18:45", "19:00", "19:15", "19:30", "19:45"
    ]  # fmt: skip
