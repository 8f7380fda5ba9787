"""The disk cache of market days: round trip, atomic files, validation on read, pruning."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.days import day_window
from drivers.prices.cache import PriceCache
from drivers.prices.types import MarketSlot

WARSAW = ZoneInfo("Europe/Warsaw")
AUTUMN = date(2025, 10, 26)


def autumn_day() -> tuple[MarketSlot, ...]:
    start, end = day_window(AUTUMN, WARSAW)
    step = timedelta(minutes=15)
    count = (end - start) // step
    return tuple(
        MarketSlot(start + i * step, start + (i + 1) * step, -0.05 + i / 1000, "PLN", 0.1 if i % 2 else None)
        for i in range(count)
    )


async def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    slots = autumn_day()
    assert len(slots) == 100
    await cache.store("pse_csdac-pln_rce-pln", AUTUMN, slots)
    assert await cache.load("pse_csdac-pln_rce-pln", AUTUMN, WARSAW) == slots
    assert not list(tmp_path.rglob("*.tmp"))
    assert await cache.load("pse_csdac-pln_rce-pln", AUTUMN + timedelta(days=1), WARSAW) is None


async def test_file_that_no_longer_validates_is_moved_aside(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    await cache.store("k", AUTUMN, autumn_day())
    path = cache.path("k", AUTUMN)
    document = json.loads(path.read_text())
    del document["slots"][50]  # a hole in the day
    path.write_text(json.dumps(document))
    assert await cache.load("k", AUTUMN, WARSAW) is None
    assert path.with_suffix(".bad").exists()
    assert not path.exists()


@pytest.mark.parametrize("content", ["", "[]", '{"version": 99, "slots": []}', "{not json"])
async def test_unreadable_files_are_ignored(tmp_path: Path, content: str) -> None:
    cache = PriceCache(tmp_path)
    path = cache.path("k", AUTUMN)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert await cache.load("k", AUTUMN, WARSAW) is None


def test_keys_cannot_escape_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"price cache key '\.\./x'"):
        PriceCache(tmp_path).path("../x", AUTUMN)


async def test_prune_removes_old_days_only(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    slots = autumn_day()
    await cache.store("a", AUTUMN, slots)
    later = cache.path("a", AUTUMN + timedelta(days=3))
    later.write_text("{}")
    assert await cache.prune(AUTUMN + timedelta(days=1)) == 1
    assert later.exists()
    assert await PriceCache(tmp_path / "absent").prune(AUTUMN) == 0
