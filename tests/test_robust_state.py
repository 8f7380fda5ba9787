"""The loads' stored state against damage: a stored value that no longer reads, and a power cut
in the middle of writing the loads' goals and marks (kill -9 of the process writing them).

Real SQLite files in the state directory; the damage is done with sqlite3 as a disk would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from test_load_goals import BOILER, NOW, set_goal
from test_loads_plan import DISHWASHER, config

from controller.cli import main
from controller.control import goals, load_goals
from controller.daemon.load_marks import MARKS_KEY
from controller.daemon.load_runs import RUNS_KEY
from controller.daemon.loads import LoadLink
from controller.loads.appliance import ApplianceState
from controller.loads.inputs import make_load_plan
from controller.planner.inputs import PricedSlot
from storage.sqlite import DB_FILENAME

LOADS = DISHWASHER + BOILER


def damage(state_dir: Path, key: str, text: str | bytes | int) -> None:
    """Replace the stored value of ``key`` as a damaged disk or an old bug would leave it."""
    with sqlite3.connect(state_dir / DB_FILENAME) as db:
        changed = db.execute("UPDATE state SET value_json = ? WHERE key = ?", (text, key)).rowcount
    assert changed == 1, key


@pytest.mark.parametrize("damaged", ['{"boiler": {"load": "boi', b"\xff\xfe{", "[" * 5000, 17])
async def test_a_stored_value_that_does_not_read_is_kept_aside_and_the_loads_go_on(
    tmp_path: Path, damaged: str | bytes | int
) -> None:
    cfg = config(LOADS)
    clock = SettableClock(NOW)
    async with data_manager(tmp_path, clock) as data:
        await load_goals.store(data, set_goal({"load": "boiler", "by": "06:30", "temperature_c": 60}))
        await data.put_state(MARKS_KEY, {"dishwasher": None})
        await goals.store(data, goals.RuntimeGoals())
    for key in (load_goals.STATE_KEY, MARKS_KEY, goals.STATE_KEY):
        damage(tmp_path, key, damaged)
    async with data_manager(tmp_path, clock) as data:  # the restart after the damage
        link = LoadLink(cfg, data, clock)
        await link.marks.restore()
        assert link.switcher.marks() == {}  # the mark did not read: nobody is marked
        assert await link.read_goals() is False  # none read, none before
        await link.tick()  # the loads are switched (at their defaults, without a plan)
        assert set(link.switcher.loads) == {"dishwasher", "boiler"}
        assert await goals.load(data) == goals.RuntimeGoals()
        # what did not read is kept, for a person to look at (17 reads, as the wrong shape)
        with sqlite3.connect(tmp_path / DB_FILENAME) as db:
            kept = dict(db.execute("SELECT key, value_json FROM state WHERE key LIKE 'damaged.%'").fetchall())
        keys = (load_goals.STATE_KEY, MARKS_KEY, goals.STATE_KEY)
        assert kept == ({} if damaged == 17 else {f"damaged.{key}": damaged for key in keys})
        # a new goal is taken and stored afresh
        fresh = set_goal({"load": "boiler", "by": "07:00", "temperature_c": 55})
        await load_goals.store(data, fresh)
        assert await load_goals.load(data) == fresh


def test_the_cli_sets_a_goal_over_a_damaged_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    config_file = tmp_path / "hemsd.toml"
    config_file.write_text(f'[storage]\nstate_dir = "{state}"\n[mqtt]\nhost = "localhost"\n' + LOADS)
    where = ["--config", str(config_file)]
    assert main(["load", "goal", "boiler", "--by", "06:30", "--temperature", "60", *where]) == 0
    assert main(["goal", "reserve", "40", "--hours", "3", *where]) == 0
    damage(state, load_goals.STATE_KEY, '{"boiler": ')
    damage(state, goals.STATE_KEY, "{")
    capsys.readouterr()
    assert main(["load", "list", *where]) == 0
    assert "boiler           water_heater  no goal" in capsys.readouterr().out
    assert main(["load", "goal", "dishwasher", "--by", "06:00", *where]) == 0
    assert main(["goal", "reserve", "45", "--hours", "2", *where]) == 0
    listed = capsys.readouterr().out
    assert "load goal dishwasher done by" in listed


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from storage.datamanager import DataManager, StorageOptions

    async def main() -> None:
        async with DataManager(StorageOptions(state_dir=Path(sys.argv[1]))) as data:
            n = 0
            while True:
                n += 1
                goals = {f"load{i}": {"load": f"load{i}", "n": n, "pad": "x" * 2000} for i in range(16)}
                await data.put_state("load_goals", goals)
                await data.put_state("load_marks", {f"load{i}": None for i in range(n % 16)})
                if n == 20:
                    print("writing", flush=True)

    asyncio.run(main())
    """
)


async def read_back(state_dir: Path) -> tuple[object, object]:
    async with data_manager(state_dir, SettableClock(NOW)) as data:
        return await data.get_state("load_goals"), await data.get_state(MARKS_KEY)


@pytest.mark.slow
def test_a_power_cut_while_the_goals_are_written_leaves_the_last_whole_write(tmp_path: Path) -> None:
    """kill -9 of a process writing the loads' goals and marks as fast as it can, three times:
    each restart reads a whole value of each, as written by one write."""
    for _ in range(3):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parent.parent,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        )
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline() == b"writing\n"
            time.sleep(0.3)
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(10)
        stored, marks = asyncio.run(read_back(tmp_path))
        assert isinstance(stored, dict)
        assert len(stored) == 16
        assert len({json.dumps(v["n"]) for v in stored.values() if isinstance(v, dict)}) == 1
        assert isinstance(marks, dict)
        with sqlite3.connect(tmp_path / DB_FILENAME) as db:
            assert db.execute("SELECT count(*) FROM state WHERE key LIKE 'damaged.%'").fetchone() == (0,)


POOL = """
[[loads]]
name = "pool"
type = "appliance"
power_w = 1000
duration_min = 120
earliest_start = "06:00"
latest_end = "20:00"
default_start = "09:00"
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 2000
duration_min = 90
earliest_start = "19:00"
latest_end = "07:00"
default_start = "19:00"
"""
NINE = datetime(2026, 4, 11, 7, 0, tzinfo=UTC)  # 09:00 in Warsaw: the pool's own time


def runs_planned(link: LoadLink, now: datetime) -> list[datetime]:
    """The quarter-hours a plan made now runs the pool in, today (until 20:00 local)."""
    slots = [
        PricedSlot(now + timedelta(minutes=15 * i), now + timedelta(minutes=15 * (i + 1)), 0.5, 0.1)
        for i in range(32)
    ]
    n = len(slots)
    plan = make_load_plan(link.config, 50.0, slots, [0.0] * n, [400.0] * n, now, None, link.switcher.states())
    (pool,) = (s for s in plan.loads if s.name == "pool")
    return [s.start for s, w in zip(slots, pool.power_w, strict=True) if w > 0]


async def test_a_restart_neither_runs_a_done_run_again_nor_forgets_one_under_way(tmp_path: Path) -> None:
    cfg = config(POOL)
    clock = SettableClock(NINE)
    async with data_manager(tmp_path, clock) as data:
        link = LoadLink(cfg, data, clock)
        await link.runs.restore()
        for minute in range(0, 125, 5):  # the pool's run at its own time, 09:00-11:00
            clock.now = NINE + timedelta(minutes=minute)
            await link.tick()
        assert link.switcher.loads["pool"].output == "off"
        assert link.switcher.loads["pool"].appliance.done_until is not None
    clock.now = NINE + timedelta(hours=3)  # the restart, at 12:00
    async with data_manager(tmp_path, clock) as data:
        again = LoadLink(cfg, data, clock)
        await again.runs.restore()
        assert runs_planned(again, clock.now) == []  # today's run is done: no second one
        await again.tick()
        assert again.switcher.loads["pool"].output == "off"
        # the dishwasher's run under way at the next restart goes on to its end
        clock.now = datetime(2026, 4, 11, 17, 0, tzinfo=UTC)  # 19:00: its own time
        await again.tick()
        assert again.switcher.loads["dishwasher"].output == "on"
    clock.now = datetime(2026, 4, 11, 17, 40, tzinfo=UTC)
    async with data_manager(tmp_path, clock) as data:
        third = LoadLink(cfg, data, clock)
        await third.runs.restore()
        assert third.switcher.loads["dishwasher"].appliance.started_at == datetime(
            2026, 4, 11, 17, 0, tzinfo=UTC
        )
        await third.tick()
        assert third.switcher.loads["dishwasher"].output == "on"
        clock.now = datetime(2026, 4, 11, 18, 30, tzinfo=UTC)  # its 90 minutes over
        await third.tick()
        assert third.switcher.loads["dishwasher"].output == "off"


async def test_a_stored_run_that_does_not_read_is_dropped(tmp_path: Path) -> None:
    cfg = config(POOL)
    clock = SettableClock(NINE)
    async with data_manager(tmp_path, clock) as data:
        await data.put_state(
            RUNS_KEY,
            {
                "pool": {"done_until": "yesterday", "ran_h": 1.0},
                "dishwasher": {"started_at": "2026-04-11T17:00:00", "ran_h": -1},
                "garage": {"ran_h": 0.5},
                "boiler": [],
            },
        )
        link = LoadLink(cfg, data, clock)
        await link.runs.restore()
        assert link.switcher.loads["pool"].appliance == ApplianceState()
        assert link.switcher.loads["dishwasher"].appliance == ApplianceState()
        await link.tick()
        assert link.switcher.loads["pool"].output == "on"  # 09:00: its own time, as without storage
