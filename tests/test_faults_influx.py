"""InfluxDB down for a simulated day: the daemon keeps controlling, says so on MQTT, and every
point reaches InfluxDB once the server is back (counted end to end).

Real servers on loopback: InfluxDB 1.x and mosquitto; the site (emulated inverter, application)
runs on simulated time (``sim_harness``), so the day takes seconds. The Influx sink's flusher
and its circuit breaker run on real time; the breaker's longest pause is shortened so that the
replay starts within seconds of the server's return.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.config import FLAT_TARIFF
from support.mqtt_fixtures import Observer, mosquitto
from support.servers import ServerProcess, influx_create_database, influx_query, start_influxd
from support.sim_harness import Site, close_site, open_site
from support.waiting import eventually

import controller.status.report
from storage.influx import InfluxSink

TZ = ZoneInfo("Europe/Warsaw")
SITE = "influxfault"
BODY = (
    """
[site]
id = "{site}"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 300
plan_interval_min = 60
publish_interval_s = 300
[executor]
min_dwell_s = 0
stale_after_s = 900
"""
    + FLAT_TARIFF
    + """[storage.influx]
batch_size = 2000
flush_interval_s = 0.2
timeout_s = 1
[storage.influx.server]
type = "v1"
url = "{url}"
database = "hemsd"
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
keepalive_s = 5
"""
)


@pytest.fixture
def influxd(tmp_path: Path):  # type: ignore[no-untyped-def]
    with start_influxd(tmp_path) as server:
        influx_create_database(server, "hemsd")
        yield server


def sent_timestamps(lines: list[str]) -> dict[str, set[str]]:
    """Distinct timestamps per measurement of the line-protocol lines handed to the sink."""
    out: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        out[line.split(",", 1)[0]].add(line.rsplit(" ", 1)[1])
    return out


def stored(server: ServerProcess, measurement: str) -> set[str]:
    """Timestamps (epoch ms, as in the lines) of the points InfluxDB holds for ``measurement``."""
    return {str(row[0]) for row in influx_query(server, "hemsd", f'SELECT * FROM "{measurement}"')}


def local(epoch_ms: str) -> str:
    return datetime.fromtimestamp(int(epoch_ms) / 1000, TZ).isoformat()


async def test_influxdb_down_for_a_day_loses_no_point(
    tmp_path: Path, influxd: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller.status.report, "STORAGE_HEALTH_S", 0.0)  # every publish reads fresh health
    with mosquitto(tmp_path) as broker:
        observer = Observer(broker.port, topics=(f"hemsd/{SITE}/health",))
        lines: list[str] = []  # every line the application hands to the sink, from the start
        add = InfluxSink.add

        async def recording_add(self: InfluxSink, batch: list[str]) -> None:
            lines.extend(batch)
            await add(self, batch)

        monkeypatch.setattr(InfluxSink, "add", recording_add)
        body = BODY.format(site=SITE, url=influxd.url, mqtt_port=broker.port)
        site: Site = await open_site(tmp_path, datetime(2026, 6, 15, 6, 0, tzinfo=TZ), body)
        try:
            sink = site.app.parts.data.sink
            assert isinstance(sink, InfluxSink)
            sink.breaker.max_reset_s = 2.0  # real seconds: the replay starts soon after the server returns
            health = f"hemsd/{SITE}/health"

            await site.run(timedelta(hours=1))
            influxd.stop()
            mark = len(observer.on(health))
            await site.run(timedelta(hours=24))
            assert not site.failures, site.failures[:3]
            assert sink.spool_depth > 1000  # a day of points waits in SQLite

            def outage_reported() -> bool:
                reports = [json.loads(m.payload) for m in observer.on(health)[mark:]]
                return any("influx" in r["stale_sources"] and r["spool_depth"] > 0 for r in reports)

            await eventually(outage_reported, 30, "health on MQTT names influx and the spool")

            influxd.start()
            mark = len(observer.on(health))
            await site.run(timedelta(hours=1))
            deadline = time.monotonic() + 30
            while (sink.spool_depth or sink.buffered) and time.monotonic() < deadline:
                await site.settle(0.2)
            assert (sink.spool_depth, sink.buffered) == (0, 0), sink.report()
            await site.run(timedelta(minutes=10))  # one more publish: the status clears

            def recovered() -> bool:
                last = observer.last(health)
                return last is not None and "influx" not in json.loads(last.payload)["stale_sources"]

            await eventually(recovered, 30, "health on MQTT no longer names influx")
            await site.app.parts.data.flush()
            await site.app.parts.data.sink.flush()
            report = sink.report()
            assert (report["dropped"], report["rejected"]) == (0, 0), report

            # end to end: every distinct point handed to the sink is in InfluxDB
            expected = sent_timestamps(lines)
            polls = site.runs["poll"] + 1  # and start() polls once
            assert len(expected["snapshot"]) == polls
            for measurement, stamps in expected.items():
                missing = sorted(stamps - stored(influxd, measurement))
                assert not missing, (measurement, len(missing), [local(m) for m in missing[:10]])
        finally:
            observer.close()
            await close_site(site)
