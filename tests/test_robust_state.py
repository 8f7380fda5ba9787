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
from pathlib import Path

import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from test_load_goals import BOILER, NOW, set_goal
from test_loads_plan import DISHWASHER, config

from controller.cli import main
from controller.control import goals, load_goals
from controller.daemon.load_marks import MARKS_KEY
from controller.daemon.loads import LoadLink
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
