"""The loads' MQTT inputs tried as a hostile or careless client would: a real mosquitto, the
daemon's load link (its switcher, its MQTT connection and its storage) and a second client.

A power or temperature reading that does not read, or that no meter or sensor gives (1e308 W,
-5 kW, a payload of megabytes or nested ten thousand deep), changes nothing and is logged once a
minute per topic, not once a message; a retained flood of 10 000 controls is refused, each on the
loads' error topic, and the loads go on being switched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from support.mqtt_fixtures import Observer, mosquitto
from support.servers import ServerProcess
from support.waiting import eventually

from controller.config.loading import load_config_text
from controller.daemon.loads import LoadLink
from controller.loads.joint import ThermalState

NOW = datetime(2026, 4, 11, 7, 0, tzinfo=UTC)  # 09:00 in Warsaw
BASE = "hemsd/home/load"
PROBE = f"{BASE}/boiler_reset/set"
LOADS = """
[site]
id = "home"
timezone = "Europe/Warsaw"
[mqtt]
host = "127.0.0.1"
port = {port}
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
power_json_path = "ENERGY.Power"
[[loads]]
name = "boiler"
type = "water_heater"
temperature_topic = "tele/boiler/temp"
[loads.switch]
power_topic = "tele/boiler/power"
"""
HOSTILE = (
    b"1e308",
    b"-1e308",
    b"-5000",
    b"100001",
    b"1e999",
    b"NaN",
    b"-Infinity",
    b"\xff\xfe\x00",
    b"",
    b"[" * 10_000,
    b"9" * 5_000,
    b"1" * 2_000_000,
    b'{"ENERGY": {"Power": 1e308}}',
    b'{"ENERGY": {"Power": true}}',
    b'{"ENERGY": {"Power": "640"}}',
    b'{"ENERGY": [640]}',
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path) as server:
        yield server


def refusals(observer: Observer, topic: str) -> list[dict[str, object]]:
    """The link's refusals, on ``<base>/error``, of what was published on ``topic``; oldest first."""
    found = [m.json() for m in observer.on(f"{BASE}/error")]
    return [r for r in found if isinstance(r, dict) and r.get("topic") == topic]


async def subscribed(port: int, within_s: float = 30.0) -> None:
    """Wait until the link's connection has subscribed (a message published before it has is lost,
    and connecting says nothing of that): a reset that is not PRESS, refused and changing nothing,
    is sent every half second until a refusal of it comes back."""
    probe = Observer(port, (f"{BASE}/error",), name="probe")
    try:
        for _ in range(int(within_s / 0.5)):
            probe.publish(PROBE, b"MAYBE")
            with contextlib.suppress(AssertionError):
                await eventually(lambda: bool(refusals(probe, PROBE)), 0.5, "the probe's refusal")
                return
        raise AssertionError(f"not within {within_s} s: a refusal on {PROBE}")
    finally:
        probe.close()


@asynccontextmanager
async def running_link(tmp_path: Path, port: int) -> AsyncIterator[LoadLink]:
    clock = SettableClock(NOW)
    async with data_manager(tmp_path, clock) as data, AsyncExitStack() as stack:
        link = LoadLink(load_config_text(LOADS.format(port=port)), data, clock)
        await link.start(stack)
        assert await link.client.wait_connected(30)
        await subscribed(port)
        yield link


async def test_hostile_readings_change_nothing_and_are_logged_once_a_minute(
    tmp_path: Path, broker: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "controller.daemon.load_inbox")
    observer = Observer(broker.port, ("none/#",))
    try:
        async with running_link(tmp_path, broker.port) as link:
            pool, boiler = link.switcher.loads["pool"], link.switcher.loads["boiler"]
            observer.publish("tele/pool/SENSOR", json.dumps({"ENERGY": {"Power": 640}}))
            observer.publish("tele/boiler/power", b"2950.5")
            observer.publish("tele/boiler/temp", b"51.5")
            await eventually(lambda: boiler.temperature_c == 51.5, 30, "the good readings")
            assert (pool.power_w, boiler.power_w) == (640.0, 2950.5)
            drawn = link.drawn_w()
            for payload in HOSTILE:
                for topic in ("tele/pool/SENSOR", "tele/boiler/power", "tele/boiler/temp"):
                    observer.publish(topic, payload)
            observer.publish("tele/boiler/temp", b"52")  # a good one, after them all
            await eventually(lambda: boiler.temperature_c == 52.0, 30, "the last reading")
            assert (pool.power_w, boiler.power_w) == (640.0, 2950.5)
            assert link.drawn_w() == drawn
            lines = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
            assert len(lines) == 3, lines  # one per topic
            assert all(len(line) < 400 for line in lines), lines
            assert any("power on tele/pool/SENSOR" in line for line in lines)
            assert link.client.connected
    finally:
        observer.close()


def test_a_reading_out_of_range_is_refused_naming_it() -> None:
    from controller.control import load_model  # noqa: PLC0415

    for bad in (1e308, -1e308, -101.0, 100_000.5, float("nan")):
        with pytest.raises(ValueError, match=r"power: .* W is outside -100\.\.100000"):
            load_model.check_power(bad)
    assert load_model.check_power(-0.0) == 0.0


async def test_a_temperature_that_jumps_is_taken_only_when_the_next_reading_confirms_it(
    tmp_path: Path, broker: ServerProcess
) -> None:
    """A sensor's glitch (55 -> -40 -> 55 degC) changes nothing: not the store's temperature, not
    what it drew today; a store that did get that cold is believed at the second reading."""
    observer = Observer(broker.port, ("none/#",))
    try:
        async with running_link(tmp_path, broker.port) as link:
            boiler = link.switcher.loads["boiler"]
            clock = link.now
            assert isinstance(clock, SettableClock)
            for minute, reading in enumerate((b"55", b"-40", b"55.5", b"20", b"21", b"-0")):
                clock.now = NOW + timedelta(minutes=minute)
                await link.tick()
                observer.publish("tele/boiler/temp", reading)
                await eventually(  # taken (at this minute) or held (until the next confirms it)
                    lambda at=clock.now, c=float(reading): boiler.measured_at == at or boiler.held_c == c,
                    30,
                    f"the reading {reading!r} taken or held",
                )
                if reading == b"55.5":
                    assert boiler.temperature_c == 55.5
                    counted = link.switcher.states()["boiler"]
                    assert isinstance(counted, ThermalState)
                    assert counted.drawn_today_kwh < 0.1  # not the 22 kWh of a tank at -40 degC
                if reading == b"20":
                    assert boiler.temperature_c == pytest.approx(55.5, abs=0.3)  # held
            assert boiler.temperature_c == pytest.approx(21.0, abs=0.5)  # confirmed by 21 after 20; -0 held
    finally:
        observer.close()


@pytest.mark.slow
async def test_a_retained_flood_of_controls_is_refused_and_the_loads_go_on(
    tmp_path: Path, broker: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    flood = Observer(broker.port, (f"{BASE}/error", f"{BASE}/pool/command"), name="flood")
    try:
        for i in range(10_000):  # retained: each one replays on every connect
            topic = (
                f"{BASE}/pool_{'enabled' if i % 2 else 'goal'}/set" if i < 10 else f"{BASE}/x{i}_enabled/set"
            )
            flood.client.publish(topic, b"OFF" if i % 2 else b'{"by": "19:00"}', qos=0, retain=True)
        flood.publish(f"{BASE}/last_enabled/set", b"ON", retain=True)
        async with running_link(tmp_path, broker.port) as link:
            # (the broker itself delivers a few thousand of them to a new subscriber, not all)
            counts = [-1, 0]
            while counts[-1] != counts[-2]:  # until no more arrive
                await asyncio.sleep(1.0)
                counts.append(link.client.stats.rejected_commands)
            assert counts[-1] > 1000
            errors = [m.json() for m in flood.on(f"{BASE}/error")]
            errors = [e for e in errors if not (isinstance(e, dict) and e["topic"] == PROBE)]
            assert errors
            assert all(isinstance(e, dict) and e["field"] == "retain" for e in errors)
            assert link.switcher.loads["pool"].enabled  # no retained OFF took
            assert link.goal_link.goals.goals == {}
            await link.tick()
            assert link.switcher.loads["pool"].output == "on"  # 09:00: its default time
            await eventually(lambda: flood.payload(f"{BASE}/pool/command") == b"ON", 10, "its command sent")
            assert link.client.connected
            # the controls sent now, not retained, are taken
            flood.publish(f"{BASE}/pool_enabled/set", b"OFF")
            await eventually(lambda: not link.switcher.loads["pool"].enabled, 10, "a live control")
        rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
        assert len(rejected) < 20  # a count, not a line each
    finally:
        flood.close()


@pytest.mark.slow
async def test_after_the_broker_is_back_each_device_is_switched_as_planned_at_once(tmp_path: Path) -> None:
    """The broker is gone while the pool runs, and its run ends meanwhile; at the first tick
    after the broker is back, without waiting for the five-minute repeat, its device is told."""
    with mosquitto(tmp_path) as broker:
        text = LOADS.replace(
            '[loads.switch]\npower_topic = "tele/pool/SENSOR"',
            '[loads.switch]\nvia = "mqtt"\ncommand_topic = "cmnd/pool/POWER"\npower_topic = "tele/pool/SENSOR"',
        )
        clock = SettableClock(NOW)
        async with data_manager(tmp_path, clock) as data, AsyncExitStack() as stack:
            link = LoadLink(load_config_text(text.format(port=broker.port)), data, clock)
            await link.start(stack)
            assert await link.client.wait_connected(10)
            device = Observer(broker.port, ("cmnd/pool/POWER",), name="device")
            try:
                await link.tick()
                await eventually(lambda: device.payload("cmnd/pool/POWER") == b"ON", 30, "the pool on")
                device.close()
                await asyncio.to_thread(broker.stop)
                await eventually(lambda: not link.client.connected, 10, "the broker gone")
                clock.now = NOW + timedelta(hours=2, minutes=5)  # its run (09:00-11:00) over
                await link.tick()
                assert link.switcher.loads["pool"].output == "off"
                await asyncio.to_thread(broker.start)
                await eventually(lambda: link.client.connected, 30, "the broker back")
                device = Observer(broker.port, ("cmnd/pool/POWER",), name="device")
                clock.now = NOW + timedelta(hours=2, minutes=6)  # within the 5-minute repeat
                await link.tick()
                await eventually(lambda: device.payload("cmnd/pool/POWER") == b"OFF", 30, "the pool told off")
            finally:
                device.close()


async def test_a_goal_nested_too_deep_on_a_load_s_own_topic_is_refused_naming_it(
    tmp_path: Path, broker: ServerProcess
) -> None:
    observer = Observer(broker.port, (f"{BASE}/error",))
    try:
        async with running_link(tmp_path, broker.port) as link:
            observer.publish(f"{BASE}/boiler_goal/set", b"[" * 1000)
            await eventually(lambda: refusals(observer, f"{BASE}/boiler_goal/set"), 30, "the error")
            (error,) = refusals(observer, f"{BASE}/boiler_goal/set")
            assert (error["field"], error["error"]) == ("payload", "nested too deeply")
            assert link.client.connected
    finally:
        observer.close()
