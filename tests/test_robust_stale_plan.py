"""A plan whose prices ran out: the re-plan that finds none for now is skipped, and what is
published says so. Home Assistant gets the last plan flagged stale (its "Plan stale" problem
sensor on), the loads go to their defaults with nothing planned, the web's plan is cleared.

The application on simulated time (``sim_harness``) against the emulated inverter, a real
mosquitto and Home Assistant played by an MQTT client; the prices are a CSV file that ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.load_site import BASE
from support.mqtt_fixtures import Observer, mosquitto
from support.servers import ServerProcess
from support.sim_harness import close_site, open_site
from support.waiting import eventually

from controller.frontends.web.views import plan_json

START = datetime(2026, 6, 15, 20, 0, tzinfo=UTC)  # 22:00 in Warsaw
PRICES_END = datetime(2026, 6, 15, 22, 0, tzinfo=UTC)  # local midnight: whole days of prices
BODY = """
[site]
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 60
publish_interval_s = 300
[[prices.sources]]
type = "csv"
path = "{prices}"
currency = "PLN"
timezone = "Europe/Warsaw"
[mqtt]
host = "127.0.0.1"
port = {port}
keepalive_s = 5
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 1800
duration_min = 60
earliest_start = "06:00"
latest_end = "22:00"
"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path) as server:
        yield server


def prices_until(path: Path, end: datetime) -> None:
    t, lines = START - timedelta(days=1), ["start,price"]
    while t < end:
        lines.append(f"{t.isoformat()},{0.3 if t.hour % 6 else 0.9}")
        t += timedelta(minutes=15)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plan_of(observer: Observer) -> dict[str, object]:
    message = observer.last(f"{BASE}/plan")
    assert message is not None
    payload = message.json()
    assert isinstance(payload, dict)
    return payload


async def test_a_plan_whose_prices_ran_out_is_published_stale(tmp_path: Path, broker: ServerProcess) -> None:
    prices = tmp_path / "prices.csv"
    prices_until(prices, PRICES_END)
    observer = Observer(broker.port, (f"{BASE}/#",))
    site = await open_site(tmp_path, START, BODY.format(prices=prices, port=broker.port))
    try:
        await site.run(timedelta(minutes=20))
        await eventually(lambda: observer.last(f"{BASE}/plan") is not None, 10, "the plan published")
        first = plan_of(observer)
        assert first["stale"] is False
        assert site.app.plan is not None
        assert site.app.load_plan is not None
        await site.run(timedelta(minutes=40))
        assert plan_of(observer)["stale"] is False  # re-planned while the prices last
        await site.run(timedelta(hours=2))  # past the prices' end: every re-plan skipped
        await site.settle(0.5)
        assert site.app.plan is None
        assert site.app.load_plan is None
        await eventually(lambda: plan_of(observer)["stale"] is True, 10, "the plan flagged stale")
        stale = plan_of(observer)
        assert stale["slots"]  # the plan last published, for what it was, but flagged
        assert stale["created_at"] < PRICES_END.isoformat()
        web = plan_json(site.app)
        assert web["plan"] is None
        assert web["loads"] == []
        assert site.app.loads is not None
        dishwasher = site.app.loads.state("dishwasher", site.clock.now())  # as <base>/load/<name>/state says
        assert dishwasher.planned == []
        assert dishwasher.next_run is None
        assert "no plan" in dishwasher.reason
        prices_until(prices, PRICES_END + timedelta(days=2))  # prices again: a plan in force again
        await site.run(timedelta(hours=1))
        await site.settle(0.5)
        assert site.app.plan is not None
        await eventually(lambda: plan_of(observer)["stale"] is False, 10, "a fresh plan")
    finally:
        observer.close()
        await close_site(site)
