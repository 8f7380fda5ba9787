"""The loads' switcher when the clock steps (NTP correcting a Pi's clock, a wrong RTC): a run
goes on for what is left of it, a reading grows old, and a step forward or back never leaves a
load on for as long as the step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.config.loading import load_config_text
from controller.control.loads import LoadSwitcher

LOADS = """
[mqtt]
host = "127.0.0.1"
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
"""
NINE = datetime(2026, 4, 11, 7, 0, tzinfo=UTC)  # 09:00 in Warsaw: the pool's own time


def on_minutes(step_at_min: int, step: timedelta, minutes: int = 24 * 60) -> int:
    """The minutes of wall time (ticks a minute apart) the pool is on, its clock stepped by
    ``step`` ``step_at_min`` minutes after 08:30."""
    config = load_config_text(LOADS)
    switcher = LoadSwitcher(config.loads, config.site.zone)
    now, on = NINE - timedelta(minutes=30), 0
    for minute in range(minutes):
        if minute == step_at_min:
            now += step
        switcher.tick(now, None, None)
        on += switcher.loads["pool"].output == "on"
        now += timedelta(minutes=1)
    return on


@pytest.mark.parametrize(
    "step",
    [timedelta(0), -timedelta(hours=1), -timedelta(hours=3), -timedelta(days=1), -timedelta(days=20_000)],
)
def test_a_clock_stepped_back_mid_run_does_not_lengthen_the_run(step: timedelta) -> None:
    assert on_minutes(60, step) == 120 + (1 if step else 0)  # (the tick at the step counts twice)


def test_a_clock_stepped_forward_past_the_run_ends_it() -> None:
    assert on_minutes(60, timedelta(hours=5), minutes=600) == 30


def test_a_power_reading_grows_old_across_a_step_back() -> None:
    config = load_config_text(LOADS)
    switcher = LoadSwitcher(config.loads, config.site.zone)
    switcher.tick(NINE, None, None)
    switcher.power_reading("pool", 640.0, NINE + timedelta(minutes=1))
    switcher.tick(NINE + timedelta(minutes=2), None, None)
    assert switcher.drawn_w(NINE + timedelta(minutes=2)) == 640.0
    back = NINE + timedelta(minutes=3) - timedelta(hours=3)  # the clock 3 h back
    switcher.tick(back, None, None)
    assert switcher.drawn_w(back) == 640.0  # the reading a minute old (the step takes no time)
    later = back + timedelta(minutes=4)
    switcher.tick(later, None, None)
    assert switcher.drawn_w(later) == 1000.0  # 5 minutes old: no longer fresh, the model's power
