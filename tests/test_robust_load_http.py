"""The loads' goals over the HTTP API tried as a careless or hostile client would: the running
daemon (``hemsd run``, emulated inverter, a real mosquitto for the loads), every bad request a 400
naming the parameter and its value, nothing stored, no traceback in the daemon's log."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.mqtt_fixtures import mosquitto
from support.servers import free_port
from test_web import CONFIG, TOKEN, RunningDaemon, serving

LOADS = """
[mqtt]
host = "127.0.0.1"
port = {broker}
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 2000
duration_min = 90
earliest_start = "19:00"
latest_end = "07:00"
[[loads]]
name = "boiler"
type = "water_heater"
"""
GOAL = "/api/control/loads/{name}/goal"
BAD = [
    # (load, body, parameter, value quoted in the answer)
    ("garage", b'{"by": "06:00"}', "load", "garage"),
    ("x" * 2000, b'{"by": "06:00"}', "load", "xxxxxxxx"),
    ("Dishwasher", b'{"by": "06:00"}', "load", "Dishwasher"),
    ("dishwasher", b"\xff\xfe", "payload", ""),
    ("dishwasher", b"[" * 1000, "payload", "[[["),
    ("dishwasher", b'{"by": "06:00"' + b" " * 2000 + b"}", "payload", ""),
    ("dishwasher", b"[]", "payload", "[]"),
    ("dishwasher", b'"06:00"', "payload", "06:00"),
    ("dishwasher", b'{"by": 600}', "by", "600"),
    ("dishwasher", b'{"by": "6:00"}', "by", "6:00"),
    ("dishwasher", b'{"by": "24:00"}', "by", "24:00"),
    ("dishwasher", b'{"at": "2026-01-01T07:00:00"}', "at", "2026-01-01T07:00:00"),
    ("dishwasher", b'{"at": "2000-01-01T07:00:00+00:00"}', "at", "2000-01-01T07:00:00+00:00"),
    ("dishwasher", b'{"at": "9999-12-31T23:59:59+00:00"}', "at", "9999-12-31"),
    ("dishwasher", b'{"by": "06:00", "days": ["mon", "mon"]}', "days", "mon"),
    ("dishwasher", b'{"by": "06:00", "days": "mon"}', "days", "mon"),
    ("dishwasher", b'{"by": "06:00", "load": "boiler"}', "load", "boiler"),
    ("dishwasher", b'{"by": "06:00", "by": "07:00"}', "by", "07:00"),
    ("boiler", b'{"by": "06:00", "temperature_c": NaN}', "payload", "NaN"),
    ("boiler", b'{"by": "06:00", "temperature_c": 1e308}', "temperature_c", "1e+308"),
    ("boiler", b'{"by": "06:00", "temperature_c": -0.0}', "temperature_c", "-0.0"),
    ("boiler", b'{"by": "06:00", "temperature_c": "60"}', "temperature_c", "60"),
    ("boiler", b'{"by": "06:00", "temperature_c": true}', "temperature_c", "True"),
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    directory = tmp_path_factory.mktemp("loadweb")
    credentials = directory / "credentials"
    credentials.mkdir()
    (credentials / "web__token").write_text(TOKEN + "\n", encoding="utf-8")
    with mosquitto(directory) as broker:
        running = RunningDaemon(free_port(), directory / "hemsd.toml", directory / "state", directory / "log")
        text = CONFIG.format(state=running.state, port=running.port, write="true")
        running.config.write_text(text + LOADS.format(broker=broker.port), encoding="utf-8")
        with serving(running, credentials):
            yield running


def goals_of(daemon: RunningDaemon) -> list[str]:
    state = daemon.get("/api/state").json()
    return [load["goal"] for load in state["loads"]]


@pytest.mark.slow
@pytest.mark.parametrize(("load", "body", "parameter", "value"), BAD)
def test_a_bad_load_goal_gets_400_naming_the_parameter_and_changes_nothing(
    daemon: RunningDaemon, load: str, body: bytes, parameter: str, value: str
) -> None:
    reply = daemon.request("POST", GOAL.format(name=load), body)
    assert reply.status == 400, reply.text
    answer = reply.json()
    assert answer["parameter"] == parameter, answer
    assert value in str(answer["value"]), answer
    assert len(reply.text) < 2000
    assert goals_of(daemon) == ["", ""]


@pytest.mark.slow
def test_a_body_of_a_megabyte_is_refused_unread(daemon: RunningDaemon) -> None:
    reply = daemon.request("POST", GOAL.format(name="boiler"), b"{" * 1_000_000)
    assert reply.status == 413
    assert goals_of(daemon) == ["", ""]


@pytest.mark.slow
def test_a_good_goal_is_taken_and_cancelled_and_a_bad_cancel_named(daemon: RunningDaemon) -> None:
    reply = daemon.request(
        "POST", GOAL.format(name="boiler"), json.dumps({"by": "06:30", "temperature_c": 60}).encode()
    )
    assert reply.status == 200, reply.text
    assert goals_of(daemon)[1].startswith("boiler at 60 degC by")
    for path, parameter in (
        (GOAL.format(name="garage"), "load"),
        (GOAL.format(name="boiler") + "?by=6:30", "by"),
        (GOAL.format(name="boiler") + "?by=06:30&by=07:30", "by"),
        (GOAL.format(name="dishwasher"), "load_goal_cancel"),  # it has none
    ):
        reply = daemon.request("DELETE", path)
        assert reply.status in (400, 404), reply.text
        assert reply.json()["parameter"] == parameter, reply.text
    assert goals_of(daemon)[1].startswith("boiler at 60 degC by")
    assert daemon.request("DELETE", GOAL.format(name="boiler")).status == 200
    assert goals_of(daemon) == ["", ""]
