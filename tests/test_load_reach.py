"""Whether the plan meets a load's requirement (controller.control.load_reach): said per load in
its state (``goal_unreachable``, the reason), with an event when it stops or starts again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.forecaster_fixtures import SettableClock, data_manager
from test_load_goals import BOILER, NOW, plan_with, set_goal
from test_loads_plan import DISHWASHER, config

from controller.control import load_goals
from controller.control.loads import LoadSwitcher
from controller.daemon.loads import LoadLink
from controller.loads.joint import LoadPlan
from controller.loads.requirement import Requirement
from storage.records import Severity

BY_23 = datetime(2026, 4, 10, 21, 0, tzinfo=UTC)  # 23:00 in Warsaw


def switched(
    loads: str, requirements: dict[str, Requirement], plan: LoadPlan, temp_c: float = 50.0
) -> LoadSwitcher:
    cfg = config(loads)
    switcher = LoadSwitcher(cfg.loads, cfg.site.zone)
    for load in switcher.loads.values():
        if load.temperature_c is not None:
            load.temperature_c = temp_c
    switcher.set_requirements(requirements)
    switcher.tick(NOW, plan, None)
    return switcher


def test_a_requirement_the_plan_meets_is_reachable_and_none_is_nothing() -> None:
    required = {"dishwasher": Requirement(NOW, BY_23)}
    switcher = switched(DISHWASHER, required, plan_with(DISHWASHER, required))
    assert switcher.unreachable("dishwasher", NOW) == ""
    assert switcher.payload("dishwasher", NOW).goal_unreachable == ""
    plain = switched(DISHWASHER, {}, plan_with(DISHWASHER, {}))
    assert plain.unreachable("dishwasher", NOW) == ""


def test_a_run_that_does_not_fit_before_its_time_is_not_reachable() -> None:
    late = {"dishwasher": Requirement(NOW - timedelta(hours=2), NOW + timedelta(minutes=60))}
    switcher = switched(DISHWASHER, late, plan_with(DISHWASHER, late))
    assert switcher.unreachable("dishwasher", NOW) == (
        "dishwasher done by 19:00: 90 min of its run do not fit before 19:00"
    )


def test_a_disabled_or_unreliable_load_cannot_be_held_to_its_requirement() -> None:
    required = {"dishwasher": Requirement(NOW, BY_23)}
    plan = plan_with(DISHWASHER, required)
    switcher = switched(DISHWASHER, required, plan)
    switcher.set_enabled("dishwasher", False)
    assert switcher.unreachable("dishwasher", NOW) == (
        "dishwasher done by 23:00: dishwasher is disabled, left to its own default"
    )
    switcher.set_enabled("dishwasher", True)
    switcher.mark_unreliable("dishwasher", None)
    assert "does not follow its commands, left to its default" in switcher.unreachable("dishwasher", NOW)
    switcher.reliable_again("dishwasher")
    assert switcher.unreachable("dishwasher", NOW) == ""


def test_a_tank_whose_element_is_too_small_is_not_reachable() -> None:
    soon = {"boiler": Requirement(NOW, NOW + timedelta(minutes=30), 69.5)}
    switcher = switched(BOILER, soon, plan_with(BOILER, soon, temp_c=45.0), temp_c=45.0)
    why = switcher.unreachable("boiler", NOW)
    assert why.startswith("boiler 69.5 degC by 18:30: the plan reaches ")
    assert why.endswith("degC then: its 3 kW element is too small")
    warm = {"boiler": Requirement(NOW, datetime(2026, 4, 11, 4, 30, tzinfo=UTC), 65.0)}
    assert switched(BOILER, warm, plan_with(BOILER, warm)).unreachable("boiler", NOW) == ""


async def test_the_daemon_raises_an_event_when_a_requirement_becomes_unreachable(tmp_path: Path) -> None:
    cfg = config(DISHWASHER)
    clock = SettableClock(NOW)
    async with data_manager(tmp_path, clock) as data:
        await load_goals.store(data, set_goal({"load": "dishwasher", "by": "23:00"}))
        link = LoadLink(cfg, data, clock)
        await link.read_goals()
        link.use_plan(plan_with(DISHWASHER, link.switcher.requirements()))
        await link.tick()
        kinds = ("load.goal_unreachable", "load.goal_reachable")
        assert await data.events(kinds=kinds) == []
        link.switcher.set_enabled("dishwasher", False)
        await link.tick()
        await link.tick()  # once, not on every tick
        raised = await data.events(kinds=kinds)
        assert [(e.kind, e.severity) for e in raised] == [("load.goal_unreachable", Severity.WARNING)]
        assert raised[0].message == (
            "dishwasher done by 23:00: dishwasher is disabled, left to its own default (not reachable)"
        )
        assert raised[0].data == {"load": "dishwasher"}
        link.switcher.set_enabled("dishwasher", True)
        await link.tick()
        assert sorted(e.kind for e in await data.events(kinds=kinds)) == sorted(kinds)
