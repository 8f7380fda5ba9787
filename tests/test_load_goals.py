"""Per-load requirements set at run time (controller.control.load_goals): validated as the other
controls are, placed by the planner within them (or said to be out of reach), followed by the
switcher and ended once done or past; set through the HTTP API and the CLI."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from test_loads_plan import DISHWASHER, START, config, day_inputs

from controller.cli import main
from controller.control import load_goals
from controller.control.applier import control_limits
from controller.control.commands import CommandRejectedError, load_goal_payload, parse_command
from controller.control.loads import LoadSwitcher
from controller.daemon.load_marks import MARKS_KEY
from controller.daemon.loads import LoadLink
from controller.loads.inputs import make_load_plan
from controller.loads.joint import LoadPlan, ThermalState
from controller.loads.requirement import Requirement
from storage.datamanager import DataManager, StorageOptions

BOILER = '[[loads]]\nname = "boiler"\ntype = "water_heater"\n'
NOW = START  # 18:00 in Warsaw, 10 April 2026


def command(body: dict[str, object], now: datetime = NOW) -> object:
    cfg = config(DISHWASHER + BOILER)
    return parse_command("load_goal", json.dumps(body).encode(), control_limits(cfg), now)


def set_goal(
    body: dict[str, object], stored: load_goals.LoadGoals = load_goals.NO_LOAD_GOALS
) -> load_goals.LoadGoals:
    cfg = config(DISHWASHER + BOILER)
    parsed = command(body)
    assert isinstance(parsed, load_goals.LoadGoalCommand)
    return load_goals.updated(stored, parsed, "test", NOW, cfg)[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"load": "garage", "by": "21:00"}, "load"),  # no such load
        ({"load": "dishwasher", "by": "18:30"}, "by"),  # a 90-min run does not fit before 18:30
        ({"load": "dishwasher", "by": "23:00", "temperature_c": 60}, "temperature_c"),  # not a store
        ({"load": "boiler", "by": "06:30"}, "temperature_c"),  # a store needs its temperature
        ({"load": "boiler", "by": "06:30", "temperature_c": 75}, "temperature_c"),  # above max_c 70
        ({"load": "boiler", "by": "06:30", "temperature_c": 40}, "temperature_c"),  # below min_c 45
    ],
)
def test_a_goal_that_does_not_fit_its_load_is_refused_naming_field_and_value(
    body: dict[str, object], field: str
) -> None:
    with pytest.raises(CommandRejectedError) as info:
        set_goal(body)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"by": "17:00", "load": "boiler"}', "load"),  # the load is the topic's
        (b'{"by": "7 am"}', "by"),
        (b'{"at": "2026-04-10T17:00:00"}', "at"),  # no offset
        (b'{"by": "17:00", "temperature_c": "hot"}', "temperature_c"),
        (b"[1]", "payload"),
    ],
)
def test_a_load_s_own_goal_topic_is_parsed_by_the_same_rules(payload: bytes, field: str) -> None:
    limits = control_limits(config(DISHWASHER))
    with pytest.raises(CommandRejectedError) as info:
        parse_command("load_goal", load_goal_payload("dishwasher", payload), limits, NOW)
    assert info.value.field == field


def test_a_goal_replaces_the_one_before_ends_by_itself_and_round_trips() -> None:
    first = set_goal({"load": "dishwasher", "by": "23:00"})
    goal = first.goals["dishwasher"]
    assert goal.by == datetime(2026, 4, 10, 21, 0, tzinfo=UTC)  # 23:00 in Warsaw, today
    assert goal.describe(config().site.zone) == "dishwasher done by 2026-04-10 23:00"
    both = set_goal({"load": "boiler", "by": "06:30", "temperature_c": 60}, first)
    assert set(both.goals) == {"dishwasher", "boiler"}
    assert both.goals["boiler"].by == datetime(2026, 4, 11, 4, 30, tzinfo=UTC)  # tomorrow's 06:30
    again = set_goal({"load": "dishwasher", "by": "22:00"}, both)
    assert again.goals["dishwasher"].by == datetime(2026, 4, 10, 20, 0, tzinfo=UTC)
    assert load_goals.LoadGoals.from_json(json.loads(json.dumps(again.to_json()))) == again
    assert set(again.current(datetime(2026, 4, 10, 20, 0, tzinfo=UTC), UTC).goals) == {"boiler"}
    # a stored goal that does not read is left out, the others kept
    broken = {**again.to_json(), "x": {"load": "x", "by": "soon"}}
    assert load_goals.LoadGoals.from_json(broken) == again
    cancel = parse_command("load_goal_cancel", b"boiler", control_limits(config()), NOW)
    cfg = config(DISHWASHER + BOILER)
    assert isinstance(cancel, load_goals.CancelLoadGoalCommand)
    assert set(load_goals.updated(again, cancel, "test", NOW, cfg)[0].goals) == {"dishwasher"}
    with pytest.raises(CommandRejectedError):
        load_goals.updated(load_goals.NO_LOAD_GOALS, cancel, "test", NOW, cfg)


def plan_with(loads: str, requirements: dict[str, Requirement], temp_c: float = 50.0) -> LoadPlan:
    cfg = config(loads)
    slots, pv, load = day_inputs()
    states = {"boiler": ThermalState(temp_c)}
    return make_load_plan(cfg, 50.0, slots, pv, load, START, None, states, requirements=requirements)


def test_a_required_run_is_placed_before_its_time_where_it_costs_least() -> None:
    # the dishwasher's own window is 19:00-07:00; asked for by 23:00 it runs by 23:00, once
    by = datetime(2026, 4, 10, 21, 0, tzinfo=UTC)
    plan = plan_with(DISHWASHER, {"dishwasher": Requirement(NOW, by)})
    dishwasher = plan.loads[0]
    on = [s for s, p in zip(plan.plan.slots, dishwasher.power_w, strict=True) if p > 0]
    # 90 minutes before 23:00, none more in the window it overlaps, and tomorrow night's window's run
    assert len(on) == 12
    assert len([s for s in on if s.end <= by]) == 6
    assert on[0].start >= NOW
    assert on[5].end <= by
    assert on[6].start >= datetime(2026, 4, 11, 17, 0, tzinfo=UTC)
    assert "cheapest 1.5 h before 23:00" in dishwasher.reason
    assert "cheapest 1.5 h before 23:00 (" in dishwasher.reason.split(";")[0]
    assert dishwasher.reason.split(";")[0].endswith("as requested")
    # its place is the least-cost one of the requirement's window: the evening peak ends at 21:00
    assert on[0].start >= datetime(2026, 4, 10, 19, 0, tzinfo=UTC)
    without = plan_with(DISHWASHER, {})
    assert "as requested" not in without.loads[0].reason


def test_a_required_run_out_of_reach_is_said_so() -> None:
    # asked at 16:00 for 17:00 (a plan made later than the goal was set): no room for 90 minutes
    late = Requirement(NOW - timedelta(hours=2), NOW + timedelta(minutes=60))
    plan = plan_with(DISHWASHER, {"dishwasher": late})
    assert "as requested: not reachable" in plan.loads[0].reason


def test_a_store_is_warm_enough_by_its_required_time_or_says_it_cannot_be() -> None:
    at = datetime(2026, 4, 11, 4, 30, tzinfo=UTC)  # 06:30 tomorrow
    plain = plan_with(BOILER, {})
    plan = plan_with(BOILER, {"boiler": Requirement(NOW, at, 65.0)})
    index = [s.end for s in plan.plan.slots].index(at)
    boiler, before = plan.loads[0], plain.loads[0]
    assert boiler.temperature_c[index + 1] >= 65.0 - 0.1  # at the start of the slot after 06:30
    assert before.temperature_c[index + 1] < 60.0
    assert "65 degC by 06:30 as requested" in boiler.reason
    assert "not reachable" not in boiler.reason
    # 69.5 degC within half an hour from 45 is beyond a 3 kW element
    soon = NOW + timedelta(minutes=30)
    short = plan_with(BOILER, {"boiler": Requirement(NOW, soon, 69.5)}, temp_c=45.0)
    assert "69.5 degC by 18:30 as requested is not reachable" in short.loads[0].reason


def test_the_switcher_runs_a_required_run_by_default_and_says_when_it_is_done() -> None:
    cfg = config(DISHWASHER)
    switcher = LoadSwitcher(cfg.loads, cfg.site.zone)
    by = NOW + timedelta(hours=3)
    switcher.set_requirements({"dishwasher": Requirement(NOW, by)})
    # no plan: the run asked for starts at once (its own window opens only at 19:00)
    changed = switcher.tick(NOW, None, None)
    assert [(o.name, o.output) for o in changed] == [("dishwasher", "on")]
    t = NOW
    for _ in range(10):
        t += timedelta(minutes=10)
        switcher.tick(t, None, None)
    assert switcher.take_done() == ["dishwasher"]
    assert switcher.loads["dishwasher"].output == "off"
    assert switcher.take_done() == []
    # its run was inside the 19:00-07:00 window: that window's run is done too
    done_until = switcher.loads["dishwasher"].appliance.done_until
    assert done_until is not None
    assert done_until.astimezone(cfg.site.zone).hour == 7


def test_a_required_run_follows_its_plan() -> None:
    by = datetime(2026, 4, 10, 21, 0, tzinfo=UTC)
    requirement = {"dishwasher": Requirement(NOW, by)}
    plan = plan_with(DISHWASHER, requirement)
    cfg = config(DISHWASHER)
    switcher = LoadSwitcher(cfg.loads, cfg.site.zone)
    switcher.set_requirements(requirement)
    power = np.array(plan.loads[0].power_w)
    first = plan.plan.slots[int(np.flatnonzero(power > 0)[0])].start
    outputs = []
    t = NOW
    while t <= by:
        fresh = LoadPlan(replace(plan.plan, created_at=t), plan.loads, plan.rounds, plan.solve_ms)
        switcher.tick(t, fresh, None)
        outputs.append((t, switcher.loads["dishwasher"].output))
        t += timedelta(minutes=5)
    ran = [t for t, o in outputs if o == "on"]
    assert ran[0] == first
    assert len(ran) == 18  # 90 minutes from its planned start
    assert switcher.take_done() == ["dishwasher"]


async def test_goals_are_stored_and_read_back(tmp_path: Path) -> None:
    clock = SettableClock(NOW)
    async with data_manager(tmp_path, clock) as data:
        goals = set_goal({"load": "boiler", "by": "06:30", "temperature_c": 60})
        await load_goals.store(data, goals)
    async with data_manager(tmp_path, clock) as data:  # a restart
        assert await load_goals.load(data) == goals


def test_the_cli_sets_what_the_daemon_reads_with_the_same_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "hemsd.toml"
    text = (
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nhost = "localhost"\n' + DISHWASHER + BOILER
    )
    config_file.write_text(text, encoding="utf-8")
    where = ["--config", str(config_file)]
    assert main(["load", "goal", "boiler", "--by", "06:30", "--temperature", "60", *where]) == 0
    assert "load goal boiler at 60 degC by" in capsys.readouterr().out
    assert main(["load", "goal", "boiler", "--by", "06:30", "--temperature", "90", *where]) == 2
    assert "temperature_c='90.0': must be within boiler's min_c 45 and max_c 70" in capsys.readouterr().err
    assert main(["load", "goal", "dishwasher", "--by", "6:30", *where]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hemsd load: by=")
    assert "6:30" in error

    async def mark() -> None:
        async with DataManager(StorageOptions(state_dir=tmp_path / "state")) as data:
            await data.put_state(MARKS_KEY, {"dishwasher": "2026-04-11T07:00:00+00:00"})

    asyncio.run(mark())
    assert main(["load", "list", *where]) == 0
    listed = capsys.readouterr().out
    assert (
        "dishwasher       appliance     no goal; marked unreliable, tried again at 2026-04-11 09:00" in listed
    )
    assert "boiler           water_heater  goal boiler at 60 degC by" in listed

    async def stored() -> load_goals.LoadGoals:
        async with DataManager(StorageOptions(state_dir=tmp_path / "state")) as data:
            return await load_goals.load(data)

    read = asyncio.run(stored())
    assert set(read.goals) == {"boiler"}
    assert (read.goals["boiler"].temperature_c, read.goals["boiler"].source) == (60.0, "cli")
    assert main(["load", "cancel", "boiler", *where]) == 0
    assert main(["load", "cancel", "boiler", *where]) == 2
    assert asyncio.run(stored()).goals == {}


async def test_goals_past_their_time_end_with_an_event_and_leave_storage(tmp_path: Path) -> None:
    cfg = config(DISHWASHER + BOILER)
    clock = SettableClock(NOW)
    async with data_manager(tmp_path, clock) as data:
        both = set_goal({"load": "boiler", "by": "06:30", "temperature_c": 60})
        both = set_goal({"load": "dishwasher", "by": "23:00"}, both)
        await load_goals.store(data, both)
        link = LoadLink(cfg, data, clock)
        await link.read_goals()  # read, not yet switched: the daemon was stopped until 23:00
        assert link.switcher.requirements() == both.requirements(NOW, cfg.site.zone)
        clock.now = datetime(2026, 4, 10, 21, 0, tzinfo=UTC)  # 23:00: the dishwasher's time, no run
        await link.tick()
        assert set((await load_goals.load(data)).goals) == {"boiler"}
        clock.now = datetime(2026, 4, 11, 4, 30, tzinfo=UTC)  # 06:30
        await link.tick()
        assert (await load_goals.load(data)).goals == {}
        assert link.switcher.requirements() == {}
        events = {e.kind: e for e in await data.events(kinds=("load.goal_missed", "load.goal_ended"))}
    assert (
        events["load.goal_missed"].message
        == "dishwasher done by 2026-04-10 23:00: its run was not done in time"
    )
    assert events["load.goal_ended"].message == "boiler at 60 degC by 2026-04-11 06:30: its time has come"


def test_a_store_s_requirement_is_held_even_where_its_thermostat_costs_less() -> None:
    # one flat price, no PV: heating the tank to 68 degC costs more than its thermostat's 55
    cfg = config(BOILER)
    slots, _, load = day_inputs()
    flat = [replace(s, import_price=0.5, export_price=0.1) for s in slots]
    at = datetime(2026, 4, 11, 4, 30, tzinfo=UTC)
    states = {"boiler": ThermalState(50.0)}
    requirement = {"boiler": Requirement(NOW, at, 68.0)}
    pv = [0.0] * len(slots)
    plan = make_load_plan(cfg, 50.0, flat, pv, load, START, None, states, requirements=requirement)
    index = [s.end for s in plan.plan.slots].index(at)
    assert plan.loads[0].temperature_c[index + 1] >= 68.0 - 0.1
    assert "68 degC by 06:30 as requested" in plan.loads[0].reason
    assert "not reachable" not in plan.loads[0].reason
