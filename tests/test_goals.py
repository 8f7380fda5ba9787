"""Battery goals as the daemon keeps them (controller.control.goals): the commands that set them,
their storage across a restart and their expiry, the instants they resolve to, the file's goals,
the guard's floor under a backup reserve, and ``hemsd goal`` writing what the running daemon
takes up on its next tick."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.config import FLAT_TARIFF
from support.sim_harness import close_site, open_site

from controller.cli import main
from controller.config.loading import load_config_text
from controller.config.models import ConfigError
from controller.control import goals
from controller.control.commands import (
    CancelGoalCommand,
    CommandRejectedError,
    ControlLimits,
    GoalReserveCommand,
    GoalTargetCommand,
    parse_command,
)
from controller.control.executor import Intent, SafetyGuard
from controller.physics import Action
from drivers.inverter.types import CommandKind, Snapshot
from storage.datamanager import DataManager, StorageOptions

TZ = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)  # a Friday evening; Sunday 29 March the clocks go forward
LIMITS = ControlLimits(soc_min_pct=11.0)


def parse(key: str, payload: str) -> object:
    return parse_command(key, payload.encode(), LIMITS, NOW)


def test_goal_commands_parse_into_typed_commands() -> None:
    weekly = parse("goal_target", '{"soc_pct": 80, "by": "07:00", "days": ["fri", "mon"]}')
    assert weekly == GoalTargetCommand(80.0, None, time(7, 0), ("mon", "fri"), NOW)
    once = parse("goal_target", '{"soc_pct": 90, "at": "2026-03-28T07:30:00+01:00"}')
    assert once == GoalTargetCommand(90.0, datetime(2026, 3, 28, 6, 30, tzinfo=UTC), None, (), NOW)
    assert parse("goal_reserve", '{"soc_pct": 50, "hours": 12}') == GoalReserveCommand(
        50.0, NOW + timedelta(hours=12), NOW
    )
    until = parse("goal_reserve", '{"soc_pct": 50, "until": "2026-03-28T18:00:00+01:00"}')
    assert until == GoalReserveCommand(50.0, datetime(2026, 3, 28, 17, 0, tzinfo=UTC), NOW)
    assert parse("goal_cancel", "reserve") == CancelGoalCommand("reserve", NOW)


@pytest.mark.parametrize(
    ("key", "payload", "field", "value"),
    [
        ("goal_target", '{"by": "07:00"}', "soc_pct", None),
        ("goal_target", '{"soc_pct": 5, "by": "07:00"}', "soc_pct", 5.0),
        ("goal_target", '{"soc_pct": 101, "by": "07:00"}', "soc_pct", 101.0),
        ("goal_target", '{"soc_pct": 80, "by": "7:00"}', "by", "7:00"),
        ("goal_target", '{"soc_pct": 80, "by": "24:00"}', "by", "24:00"),
        ("goal_target", '{"soc_pct": 80}', "by", None),
        ("goal_target", '{"soc_pct": 80, "by": "07:00", "at": "2026-03-28T07:00:00+01:00"}', "by", "07:00"),
        ("goal_target", '{"soc_pct": 80, "by": "07:00", "days": ["monday"]}', "days", "monday"),
        ("goal_target", '{"soc_pct": 80, "by": "07:00", "days": ["mon", "mon"]}', "days", ["mon", "mon"]),
        ("goal_target", '{"soc_pct": 80, "at": "2026-03-28T07:00:00"}', "at", "2026-03-28T07:00:00"),
        (
            "goal_target",
            '{"soc_pct": 80, "at": "2026-03-20T07:00:00+01:00"}',
            "at",
            "2026-03-20T07:00:00+01:00",
        ),
        (
            "goal_target",
            '{"soc_pct": 80, "at": "2026-04-20T07:00:00+01:00"}',
            "at",
            "2026-04-20T07:00:00+01:00",
        ),
        ("goal_target", '{"soc_pct": 80, "by": "07:00", "when": 1}', "when", 1),
        ("goal_reserve", '{"soc_pct": 50}', "until", None),
        ("goal_reserve", '{"soc_pct": 50, "hours": 0}', "hours", 0),
        ("goal_reserve", '{"soc_pct": 50, "hours": 169}', "hours", 169),
        ("goal_reserve", '{"soc_pct": "half", "hours": 2}', "soc_pct", "half"),
        ("goal_reserve", "[50]", "payload", [50]),
        ("goal_cancel", "both", "goal_cancel", "both"),
    ],
)
def test_bad_goals_are_rejected_naming_the_field_and_value(
    key: str, payload: str, field: str, value: object
) -> None:
    with pytest.raises(CommandRejectedError) as info:
        parse(key, payload)
    assert (info.value.field, info.value.value) == (field, value)


def test_weekly_targets_resolve_to_local_times_across_a_dst_change() -> None:
    target = goals.TargetGoal(80.0, "mqtt", by=time(7, 0), days=("sat", "sun", "mon"))
    instants = target.instants(NOW, NOW + timedelta(days=3), TZ)
    # Saturday 07:00 CET is 06:00 UTC; Sunday and Monday 07:00 CEST are 05:00 UTC
    assert instants == [
        datetime(2026, 3, 28, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 5, 0, tzinfo=UTC),
    ]
    assert goals.next_occurrence(time(7, 0), NOW, TZ) == datetime(2026, 3, 28, 6, 0, tzinfo=UTC)
    assert goals.next_occurrence(time(22, 0), NOW, TZ) == datetime(2026, 3, 27, 21, 0, tzinfo=UTC)


def test_the_file_and_the_running_daemon_give_goals_that_end_by_themselves() -> None:
    config = load_config_text(
        """
[[goals.targets]]
soc_pct = 60
by = "06:30"
days = ["sat"]
[[goals.targets]]
soc_pct = 70
by = "18:00"
on = 2026-03-28
[[goals.reserves]]
soc_pct = 40
until = 2026-03-28T12:00:00+01:00
"""
    )
    runtime = goals.RuntimeGoals(
        goals.TargetGoal(90.0, "mqtt", at=NOW + timedelta(hours=3)),
        goals.ReserveGoal(50.0, NOW + timedelta(hours=6), "mqtt"),
    )
    now_goals = goals.in_force(config.goals, runtime, NOW, timedelta(hours=48), TZ)
    assert [(t.soc_pct, t.at) for t in now_goals.targets] == [
        (60.0, datetime(2026, 3, 28, 5, 30, tzinfo=UTC)),
        (70.0, datetime(2026, 3, 28, 17, 0, tzinfo=UTC)),
        (90.0, NOW + timedelta(hours=3)),
    ]
    assert now_goals.reserve_at(NOW) == 50.0
    later = NOW + timedelta(hours=7)
    assert runtime.current(later) == goals.RuntimeGoals()
    assert goals.in_force(config.goals, runtime, later, timedelta(hours=48), TZ).reserve_at(later) == 40.0
    gone = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)
    assert goals.in_force(config.goals, runtime, gone, timedelta(0), TZ).reserve_at(gone) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[goals.targets]]\nsoc_pct = 80\nby = "07:00"\non = 2026-03-28\ndays = ["mon"]', "either days"),
        ('[[goals.targets]]\nsoc_pct = 80\nby = "07:00"\ndays = ["someday"]', "someday"),
        ("[[goals.reserves]]\nsoc_pct = 50\nuntil = 2026-03-28T12:00:00", "UTC offset"),
        (
            '[battery]\nmax_soc_pct = 90\n[[goals.targets]]\nsoc_pct = 95\nby = "07:00"',
            r"goals\.targets\[0\]\.soc_pct \(95\.0\) is above",
        ),
    ],
)
def test_bad_goals_in_the_file_are_named(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_text(body)


async def test_run_time_goals_survive_a_restart_and_unreadable_ones_are_skipped(tmp_path: Path) -> None:
    stored = goals.RuntimeGoals(
        goals.TargetGoal(80.0, "cli", by=time(7, 0), days=("mon", "tue")),
        goals.ReserveGoal(55.0, NOW + timedelta(hours=2), "http"),
    )
    options = StorageOptions(state_dir=tmp_path / "state")
    async with DataManager(options, now=lambda: NOW) as data:
        await goals.store(data, stored)
    async with DataManager(options, now=lambda: NOW) as data:
        assert await goals.load(data) == stored
        await data.put_state(goals.STATE_KEY, {"target": {"soc_pct": 300, "by": "07:00"}, "reserve": "x"})
        assert await goals.load(data) == goals.RuntimeGoals()


def _snapshot(soc: float) -> Snapshot:
    return Snapshot(time=NOW, pv_w=0.0, load_w=500.0, grid_w=500.0, battery_w=0.0, soc_pct=soc)


def test_the_guard_keeps_the_reserve_whatever_is_asked() -> None:
    config = load_config_text("[battery]\nmin_soc_pct = 15")
    plain = SafetyGuard(config.executor, config.battery, config.grid)
    guard = SafetyGuard(config.executor, config.battery, config.grid, reserve_pct=50.0)
    discharge = Intent(Action.DISCHARGE, 3000.0, 20.0, source="override")
    assert plain.check(discharge, _snapshot(60.0), NOW, 0.5).command.target_soc == 20.0
    kept = guard.check(discharge, _snapshot(60.0), NOW, 0.5)
    assert kept.command.kind is CommandKind.DISCHARGE
    assert (kept.command.target_soc, kept.command.min_soc) == (50.0, 50.0)
    at_reserve = guard.check(discharge, _snapshot(50.0), NOW, 0.5)
    assert at_reserve.command.kind is CommandKind.SELF_USE
    assert at_reserve.command.min_soc == 50.0
    assert [(e.kind, e.limit) for e in at_reserve.events] == [("refused", "reserve")]
    # self-use and hold keep the inverter's own floor at the reserve too
    assert guard.check(Intent(Action.SELF_USE), _snapshot(40.0), NOW, 0.5).command.min_soc == 50.0
    assert guard.check(Intent(Action.HOLD), _snapshot(40.0), NOW, 0.5).command.min_soc == 50.0


def test_the_cli_sets_what_the_daemon_reads_with_the_same_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hemsd.toml"
    config.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    where = ["--config", str(config)]
    assert main(["goal", "target", "80", "--by", "07:00", "--days", "mon,fri", *where]) == 0
    assert main(["goal", "reserve", "50", "--hours", "12", *where]) == 0
    assert main(["goal", "target", "120", "--by", "07:00", *where]) == 2
    assert "soc_pct='120.0': must be between 11 and 100" in capsys.readouterr().err
    assert main(["goal", "list", *where]) == 0
    listed = capsys.readouterr().out
    assert "target  80 % by 07:00 (mon, fri)" in listed
    assert "reserve 50 % until" in listed

    async def stored() -> goals.RuntimeGoals:
        async with DataManager(StorageOptions(state_dir=tmp_path / "state")) as data:
            return await goals.load(data)

    read = asyncio.run(stored())
    assert read.target == goals.TargetGoal(80.0, "cli", by=time(7, 0), days=("mon", "fri"))
    assert read.reserve is not None
    assert read.reserve.soc_pct == 50.0
    assert main(["goal", "cancel", "reserve", *where]) == 0
    assert main(["goal", "cancel", "reserve", *where]) == 2
    assert asyncio.run(stored()).reserve is None


async def test_a_goal_written_beside_the_running_daemon_is_taken_up_on_the_next_tick(tmp_path: Path) -> None:
    """As ``hemsd goal`` does: the goal goes to storage, the control loop notices and re-plans."""
    start = datetime(2026, 1, 14, 0, 0, tzinfo=TZ)
    site = await open_site(
        tmp_path, start, '[site]\ntimezone = "Europe/Warsaw"\n' + FLAT_TARIFF, initial_soc_pct=30
    )
    try:
        app = site.app
        assert app.plan is not None
        assert app.plan.goals == ()
        target = goals.TargetGoal(80.0, "cli", at=(start + timedelta(hours=6)).astimezone(UTC))
        await goals.store(app.parts.data, goals.RuntimeGoals(target=target))
        await site.run(timedelta(seconds=app.config.daemon.poll_interval_s), jobs=("poll",))
        assert app.plan_trigger == "goals changed"
        assert [(g.kind, g.soc_pct, g.reached) for g in app.plan.goals] == [("target", 80.0, True)]
        assert app.plan.slots[0].explanation.startswith("charging to reach 80 % by 06:00")
    finally:
        await close_site(site)
