"""Weekly load requirements (controller.control.load_goals): "dishwasher done by 17:00 on
weekdays", "boiler at 55 degC by 06:30 every day". Parsed and checked as the battery's weekly
target and the one-off load goals are, stored (a restart keeps them), each occurrence within
the plans' reach given to the planner, ended one occurrence at a time, cancelled one at a time."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from test_load_goals import BOILER, NOW, plan_with, set_goal
from test_loads_plan import DISHWASHER, config

from controller.cli import main
from controller.control import load_goals
from controller.control.applier import control_limits
from controller.control.commands import CommandRejectedError, parse_command
from controller.daemon.loads import LoadLink
from storage.datamanager import DataManager, StorageOptions

WARSAW = config().site.zone
SAT_0630 = datetime(2026, 4, 11, 4, 30, tzinfo=UTC)  # NOW is Friday 18:00 in Warsaw
SUN_0630 = datetime(2026, 4, 12, 4, 30, tzinfo=UTC)
SAT_1700 = datetime(2026, 4, 11, 15, 0, tzinfo=UTC)
SUN_1700 = datetime(2026, 4, 12, 15, 0, tzinfo=UTC)
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"load": "dishwasher", "by": "17:00", "days": ["mon", "tuesday"]}, "days", "tuesday"),
        ({"load": "dishwasher", "by": "17:00", "days": ["mon", "mon"]}, "days", ["mon", "mon"]),
        ({"load": "dishwasher", "by": "17:00", "days": "mon"}, "days", "mon"),
        ({"load": "dishwasher", "by": "25:00", "days": ["mon"]}, "by", "25:00"),
        ({"load": "dishwasher", "at": "2026-04-11T07:00:00+02:00", "days": ["sat"]}, "days", ["sat"]),
        ({"load": "boiler", "by": "06:30", "days": ["sat"], "temperature_c": 75}, "temperature_c", 75),
        ({"load": "boiler", "by": "06:30", "days": ["sat"]}, "temperature_c", None),
        ({"load": "dishwasher", "by": "17:00", "days": ["sat"], "temperature_c": 60}, "temperature_c", 60),
    ],
)
def test_a_bad_weekly_goal_is_refused_naming_field_and_value_and_changes_nothing(
    body: dict[str, object], field: str, value: object
) -> None:
    before = set_goal({"load": "dishwasher", "by": "23:00"})
    with pytest.raises(CommandRejectedError) as info:
        set_goal(body, before)
    assert (info.value.field, info.value.value) == (field, value)
    assert before == set_goal({"load": "dishwasher", "by": "23:00"})


def test_a_weekly_goal_gives_each_occurrence_within_reach_to_the_planner() -> None:
    goals = set_goal({"load": "boiler", "by": "06:30", "days": EVERY_DAY, "temperature_c": 55})
    goal = goals.weekly["boiler@06:30"]
    assert goal.describe(WARSAW) == "boiler at 55 degC by 06:30 (every day)"
    assert goals.goals == {}
    required = goals.requirements(NOW, WARSAW)["boiler"]
    assert [r.by for r in (required, *required.later)] == [SAT_0630, SUN_0630]
    # weekdays only: the next one is Monday's, beyond the plans' reach
    weekdays = set_goal({"load": "boiler", "by": "06:30", "days": EVERY_DAY[:5], "temperature_c": 55})
    assert weekdays.requirements(NOW, WARSAW) == {}
    assert weekdays.next_goal("boiler", NOW, WARSAW) == weekdays.weekly["boiler@06:30"]


def test_every_occurrence_of_a_weekly_store_goal_is_held_in_the_plan() -> None:
    goals = set_goal({"load": "boiler", "by": "06:30", "days": EVERY_DAY, "temperature_c": 62})
    plan = plan_with(BOILER, goals.requirements(NOW, WARSAW))
    plain = plan_with(BOILER, {})
    ends = [s.end for s in plan.plan.slots]
    boiler, before = plan.loads[0], plain.loads[0]
    for at in (SAT_0630, SUN_0630):
        index = ends.index(at)
        assert boiler.temperature_c[index + 1] >= 62.0 - 0.1
    assert min(before.temperature_c[ends.index(at) + 1] for at in (SAT_0630, SUN_0630)) < 60.0
    assert "62 degC by 06:30 as requested" in boiler.reason


def test_every_occurrence_of_a_weekly_run_is_placed_before_its_time_once() -> None:
    goals = set_goal({"load": "dishwasher", "by": "17:00", "days": EVERY_DAY})
    required = goals.requirements(NOW, WARSAW)["dishwasher"]
    assert [(r.start, r.by) for r in (required, *required.later)] == [(NOW, SAT_1700), (SAT_1700, SUN_1700)]
    plan = plan_with(DISHWASHER, goals.requirements(NOW, WARSAW))
    power = np.array(plan.loads[0].power_w)
    slots = plan.plan.slots
    first = [s for s, p in zip(slots, power, strict=True) if p > 0 and s.end <= SAT_1700]
    second = [
        s for s, p in zip(slots, power, strict=True) if p > 0 and s.start >= SAT_1700 and s.end <= SUN_1700
    ]
    assert (len(first), len(second)) == (6, 6)  # one 90-minute run for each, and nothing else
    assert int((power > 0).sum()) == 12


def test_a_done_occurrence_ends_alone_and_a_missed_one_is_reported() -> None:
    goals = set_goal({"load": "dishwasher", "by": "17:00", "days": EVERY_DAY})
    found = goals.done("dishwasher", NOW + timedelta(hours=4), WARSAW)
    assert found is not None
    after, occurrence = found
    assert occurrence.by == SAT_1700
    assert after.weekly["dishwasher@17:00"].done_until == SAT_1700
    assert after.requirements(NOW + timedelta(hours=4), WARSAW)["dishwasher"].by == SUN_1700
    # Saturday's was done: its time passing is no miss; Sunday's passes without a run
    assert after.passed(SAT_1700 + timedelta(minutes=1), WARSAW) == []
    missed = after.passed(SUN_1700 + timedelta(minutes=1), WARSAW)
    assert [o.describe(WARSAW) for o in missed] == ["dishwasher done by 2026-04-12 17:00"]
    later = after.current(SUN_1700 + timedelta(minutes=1), WARSAW)
    assert later.passed(SUN_1700 + timedelta(minutes=1), WARSAW) == []
    assert "dishwasher@17:00" in later.weekly  # the goal stays for the next day


def test_goals_are_cancelled_one_at_a_time() -> None:
    cfg = config(DISHWASHER + BOILER)
    limits = control_limits(cfg)
    goals = set_goal({"load": "dishwasher", "by": "17:00", "days": EVERY_DAY})
    goals = set_goal({"load": "dishwasher", "by": "12:00", "days": ["sun"]}, goals)
    goals = set_goal({"load": "dishwasher", "by": "23:00"}, goals)
    assert len(goals.of("dishwasher")) == 3
    # the same load and time replaces the weekly one before
    again = set_goal({"load": "dishwasher", "by": "17:00", "days": ["sat"]}, goals)
    assert again.weekly["dishwasher@17:00"].days == ("sat",)
    by_time = parse_command("load_goal_cancel", b'{"load": "dishwasher", "by": "12:00"}', limits, NOW)
    assert isinstance(by_time, load_goals.CancelLoadGoalCommand)
    left, summary = load_goals.updated(goals, by_time, "test", NOW, cfg)
    assert summary == "load goal dishwasher done by 12:00 (sun) cancelled"
    assert set(left.weekly) == {"dishwasher@17:00"}
    assert set(left.goals) == {"dishwasher"}
    nxt = parse_command("load_goal_cancel", b"dishwasher", limits, NOW)
    assert isinstance(nxt, load_goals.CancelLoadGoalCommand)
    left, summary = load_goals.updated(left, nxt, "test", NOW, cfg)  # the one due next: tonight's
    assert summary == "load goal dishwasher done by 2026-04-10 23:00 cancelled"
    left, _ = load_goals.updated(left, nxt, "test", NOW, cfg)
    assert left.of("dishwasher") == []
    with pytest.raises(CommandRejectedError) as info:
        load_goals.updated(left, by_time, "test", NOW, cfg)
    assert (info.value.field, info.value.value) == ("by", "12:00")


async def test_weekly_goals_and_their_done_occurrences_survive_a_restart(tmp_path: Path) -> None:
    cfg = config(DISHWASHER + BOILER)
    clock = SettableClock(NOW)
    goals = set_goal({"load": "dishwasher", "by": "17:00", "days": EVERY_DAY})
    goals = set_goal({"load": "boiler", "by": "06:30", "days": ["sat", "sun"], "temperature_c": 55}, goals)
    async with data_manager(tmp_path, clock) as data:
        await load_goals.store(data, goals)
        link = LoadLink(cfg, data, clock)
        await link.read_goals()
        assert link.switcher.requirements() == goals.requirements(NOW, WARSAW)
        # Saturday 17:00 passes without the dishwasher's run: a warning; the goal stays
        clock.now = SAT_1700 + timedelta(minutes=5)
        await link.tick()
        missed = await data.events(kinds=("load.goal_missed",))
        assert [e.message for e in missed] == [
            "dishwasher done by 2026-04-11 17:00: its run was not done in time"
        ]
    async with data_manager(tmp_path, clock) as data:  # a restart
        stored = await load_goals.load(data)
        assert set(stored.weekly) == {"dishwasher@17:00", "boiler@06:30"}
        assert stored.weekly["dishwasher@17:00"].done_until == SAT_1700
        assert stored.requirements(clock.now, WARSAW)["dishwasher"].by == SUN_1700
        link = LoadLink(cfg, data, clock)
        await link.read_goals()
        assert link.switcher.requirements()["boiler"].by == SUN_0630
        await link.tick()  # read again after the restart: the miss is not reported twice
        assert len(await data.events(kinds=("load.goal_missed",))) == 1


def test_the_cli_sets_lists_and_cancels_weekly_goals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "hemsd.toml"
    text = (
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nhost = "localhost"\n' + DISHWASHER + BOILER
    )
    config_file.write_text(text, encoding="utf-8")
    where = ["--config", str(config_file)]

    async def stored() -> load_goals.LoadGoals:
        async with DataManager(StorageOptions(state_dir=tmp_path / "state")) as data:
            return await load_goals.load(data)

    assert main(["load", "goal", "dishwasher", "--by", "17:00", "--days", "mon,tue,wed,thu,fri", *where]) == 0
    assert "load goal dishwasher done by 17:00 (mon, tue, wed, thu, fri)" in capsys.readouterr().out
    assert (
        main(["load", "goal", "boiler", "--by", "06:30", "--days", "mon,sun", "--temperature", "55", *where])
        == 0
    )
    capsys.readouterr()
    before = asyncio.run(stored())
    for bad, error in (
        (["dishwasher", "--by", "17:00", "--days", "mon,fryday"], "days=\"'fryday'\": must be one of mon"),
        (["dishwasher", "--by", "25:00", "--days", "mon"], "by=\"'25:00'\": must be a local time HH:MM"),
        (
            ["boiler", "--by", "06:30", "--days", "mon", "--temperature", "71"],
            "temperature_c='71.0': must be",
        ),
    ):
        assert main(["load", "goal", *bad, *where]) == 2
        assert error in capsys.readouterr().err
    assert asyncio.run(stored()) == before  # nothing changed
    assert main(["load", "list", *where]) == 0
    listed = capsys.readouterr().out
    assert "goal dishwasher done by 17:00 (mon, tue, wed, thu, fri) (from cli)" in listed
    assert "goal boiler at 55 degC by 06:30 (mon, sun) (from cli)" in listed
    assert main(["load", "cancel", "boiler", "--by", "07:00", *where]) == 2
    assert "by=\"'07:00'\": boiler has no weekly goal then" in capsys.readouterr().err
    assert main(["load", "cancel", "boiler", "--by", "06:30", *where]) == 0
    assert set(asyncio.run(stored()).weekly) == {"dishwasher@17:00"}
    assert (
        json.loads(json.dumps(asyncio.run(stored()).to_json()))["dishwasher@17:00"]["days"] == EVERY_DAY[:5]
    )
