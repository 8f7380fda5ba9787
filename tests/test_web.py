"""The HTTP API against the running daemon (`hemsd run`, emulated inverter, static tariff).

One daemon process serves the whole module; its token comes from the credentials directory
(``web__token``), as under systemd. Responses are checked against the OpenAPI document.
"""

from __future__ import annotations

import ast
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.config import FLAT_TARIFF
from support.mqtt_fixtures import invalid_commands
from support.openapi_check import load, problems, response_schema
from support.servers import free_port
from support.waiting import wait_until

from controller.frontends.web.server import ROUTES
from controller.planner.plan import ACTIONS

REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789abcdef"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONFIG = (
    """
[site]
id = "webtest"
[inverter]
type = "emulator"
protocol = "udp"
[daemon]
poll_interval_s = 1
publish_interval_s = 1
config_check_interval_s = 0.2
[storage]
state_dir = "{state}"
commit_interval_s = 0.5
"""
    + FLAT_TARIFF
    + """[web]
enabled = true
port = {port}
write_enabled = {write}
"""
)
READ_ENDPOINTS = (
    "/api/health",
    "/api/state",
    "/api/plan",
    "/api/prices",
    "/api/forecast",
    "/api/history?fields=pv_w,soc_pct,price.import_price&resolution=15min&stats=mean,max",
    "/api/sessions?limit=5",
    "/api/analytics/quality",
    "/api/analytics/energy",
    "/api/analytics/bill",
    "/api/analytics/voltage?critical=2",
    "/api/config/history?text=true",
)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class RunningDaemon:
    port: int
    config: Path
    state: Path
    log: Path
    ready_at: datetime = EPOCH

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        token: str | None = TOKEN,
        auth: str | None = None,
    ) -> Reply:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if auth is not None:
            headers["Authorization"] = auth
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read().decode("utf-8", "replace"))
        finally:
            connection.close()

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def write_config(self, write: bool) -> None:
        self.config.write_text(
            CONFIG.format(state=self.state, port=self.port, write="true" if write else "false"),
            encoding="utf-8",
        )


@contextmanager
def serving(running: RunningDaemon, credentials: Path) -> Iterator[RunningDaemon]:
    """``hemsd run`` on ``running``'s configuration as a process, once its health probe answers;
    stopped with SIGTERM afterwards, which it must answer with exit 0 and no traceback logged."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(running.config)],
        env=dict(os.environ, CREDENTIALS_DIRECTORY=str(credentials)),
        stdout=subprocess.DEVNULL,
        stderr=running.log.open("wb"),
    )

    def healthy() -> bool:
        try:
            return running.request("GET", "/api/health", token=None).status == 200
        except OSError:
            assert proc.poll() is None, running.log.read_text()
            return False

    try:
        wait_until(healthy, 30, "the daemon's health probe")
        running.ready_at = datetime.now(UTC)
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = running.log.read_text()
    assert "Traceback" not in text, text


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    directory = tmp_path_factory.mktemp("web")
    credentials = directory / "credentials"
    credentials.mkdir()
    (credentials / "web__token").write_text(TOKEN + "\n", encoding="utf-8")
    running = RunningDaemon(
        free_port(), directory / "hemsd.toml", directory / "state", directory / "daemon.log"
    )
    running.write_config(write=True)
    with serving(running, credentials):
        yield running


# --- reading --------------------------------------------------------------------------------------


def test_every_read_endpoint_fits_its_documented_schema(daemon: RunningDaemon) -> None:
    document = load()
    for target in READ_ENDPOINTS:
        reply = daemon.get(target)
        assert reply.status == 200, (target, reply.text)
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.headers["Cache-Control"] == "no-store"
        schema = response_schema(document, urllib.parse.urlsplit(target).path, "GET", 200)
        assert problems(document, schema, reply.json()) == [], target


def test_state_plan_and_prices_describe_the_running_site(daemon: RunningDaemon) -> None:
    state = daemon.get("/api/state").json()
    assert state["site"]["id"] == "webtest"
    assert state["snapshot"] is not None
    assert 0 <= state["snapshot"]["soc_pct"] <= 100
    assert state["action"]["source"] in ("plan", "override", "guard", "fallback")
    assert state["price_now"] == {"import": 0.6, "export": 0.6}
    plan = daemon.get("/api/plan").json()
    slots = plan["plan"]["slots"]
    assert len(slots) >= 4
    assert all(s["import_price"] == 0.6 for s in slots)
    assert plan["explanation"] == slots[0]["explanation"]
    prices = daemon.get("/api/prices").json()
    assert prices["status"] == "real"
    assert len(prices["slots"]) >= 96
    forecast = daemon.get("/api/forecast").json()
    assert len(forecast["slots"]) == 48 * 4


def test_history_reads_what_the_daemon_recorded(daemon: RunningDaemon) -> None:
    def recent() -> dict[str, Any]:
        end = datetime.now(UTC)
        start = max(end - timedelta(minutes=2), daemon.ready_at)  # raw samples: since the daemon runs
        query = urllib.parse.urlencode(
            {"fields": "pv_w,soc_pct", "start": start.isoformat(), "end": end.isoformat()}
        )
        return dict(daemon.get(f"/api/history?{query}").json())

    wait_until(
        lambda: sum(v is not None for v in recent()["fields"]["soc_pct"]["mean"]) >= 3, 15, "3 samples"
    )
    history = recent()
    assert history["resolution"] == "raw"
    assert history["status"] in ("REAL", "PARTIAL")
    assert history["source"] == "memory"
    assert len(history["times"]) == len(history["fields"]["pv_w"]["mean"])
    values = [v for v in history["fields"]["soc_pct"]["mean"] if v is not None]
    assert all(0 <= v <= 100 for v in values)
    voltage = daemon.get("/api/analytics/voltage").json()  # the emulator reports three phases
    assert voltage["phases"] == ["grid_v1", "grid_v2", "grid_v3"]
    assert voltage["limits"]["nominal_v"] == 230


def test_the_stream_pushes_a_state_after_every_poll(daemon: RunningDaemon) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    try:
        connection.request("GET", "/api/stream", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        events: list[tuple[str, Any]] = []
        name = ""
        deadline = time.monotonic() + 15
        while sum(e == "state" for e, _ in events) < 3 and time.monotonic() < deadline:
            line = response.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    finally:
        connection.close()
    names = [e for e, _ in events]
    assert names[:2] == ["state", "plan"]  # both at once on connect
    times = [d["snapshot"]["time"] for e, d in events if e == "state"]
    assert len(times) >= 3
    assert times == sorted(times)
    assert len(set(times)) >= 2  # new readings, not the same one again


# --- authentication -------------------------------------------------------------------------------


def _concrete(path: str) -> str:
    return path.replace("{name}", "min_soc")


def test_every_route_but_the_probe_and_the_page_refuses_a_missing_or_wrong_token(
    daemon: RunningDaemon,
) -> None:
    protected = [r for r in ROUTES if not r.public]
    assert len(protected) >= 15
    for route in protected:
        for auth in (
            None,
            "Bearer wrong-token-0123456789",
            f"Basic {TOKEN}",
            f"Bearer {TOKEN}x",
            "Bearer",
            "",
        ):
            reply = daemon.request(route.method, _concrete(route.path), body=b"{}", token=None, auth=auth)
            assert reply.status == 401, (route.path, auth, reply.status)
            assert reply.headers["WWW-Authenticate"] == 'Bearer realm="hemsd"'
            assert TOKEN not in reply.text
    assert (
        daemon.request("GET", "/api/nowhere", token=None).status == 401
    )  # nothing is revealed without a token
    assert daemon.get("/api/nowhere").status == 404


def test_the_health_probe_needs_no_token_but_refuses_a_wrong_one(daemon: RunningDaemon) -> None:
    anonymous = daemon.request("GET", "/api/health", token=None)
    assert anonymous.status == 200
    assert set(anonymous.json()) == {"status", "version", "time", "uptime_s"}
    assert daemon.request("GET", "/api/health", token="not-the-token-123456").status == 401
    detail = daemon.get("/api/health").json()["detail"]
    assert detail["price_status"] == "real"
    assert detail["inverter_write_cap"] == 300


def test_an_authorization_header_that_is_not_utf8_gets_401(daemon: RunningDaemon) -> None:
    request = (
        b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\xc3(\r\n"
        b"Connection: close\r\n\r\n"
    )
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as connection:
            connection.sendall(request)
            status_line = connection.makefile("rb").readline()
        assert status_line.split()[1] == b"401", status_line
    assert "Traceback" not in daemon.log.read_text()


def test_malformed_requests_get_400_and_one_log_line(daemon: RunningDaemon) -> None:
    malformed = (
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
    )
    for request in malformed * 5:
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as connection:
            connection.sendall(request)
            status_line = connection.makefile("rb").readline()
        assert status_line.split()[1] == b"400", (request[:40], status_line)
    text = daemon.log.read_text()
    assert "Traceback" not in text
    assert 1 <= text.count("malformed request(s) answered 400") <= 2


def test_the_page_is_served_without_external_resources(daemon: RunningDaemon) -> None:
    page = daemon.request("GET", "/", token=None)
    assert page.status == 200
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    for name in ("app.js", "style.css"):
        reply = daemon.request("GET", f"/static/{name}", token=None)
        assert reply.status == 200
        etag = reply.headers["ETag"]
        connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
        connection.request("GET", f"/static/{name}", headers={"If-None-Match": etag})
        assert connection.getresponse().status == 304
        connection.close()
        texts = reply.text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in texts
        assert "https://" not in texts
    assert daemon.request("GET", "/static/openapi.json", token=None).status == 404
    assert daemon.request("GET", "/static/..%2fweb.py", token=None).status == 404


def test_the_openapi_document_lists_exactly_the_served_routes() -> None:
    document = load()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    served = {(r.method, r.path) for r in ROUTES}
    assert documented == served
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        security = operation.get("security", document["security"])
        assert (security == [] or {} in security) == route.public, route.path
        if route.write:
            assert "403" in operation["responses"]


def test_the_openapi_document_names_every_action_a_plan_slot_may_take() -> None:
    schema = load()["components"]["schemas"]["PlanSlot"]["properties"]["action"]
    assert tuple(schema["enum"]) == tuple(a.value for a in ACTIONS)


def test_no_request_data_reaches_a_shell_or_sql_text() -> None:
    """The web modules import nothing that runs commands or SQL; storage gets typed values only."""
    forbidden = {"os", "subprocess", "shlex", "sqlite3", "aiosqlite", "pty", "asyncio.subprocess"}
    for name in ("server.py", "views.py"):
        tree = ast.parse((REPO / "controller" / "frontends" / "web" / name).read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & forbidden, (name, imported & forbidden)
        calls = {
            n.func.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        }
        assert not calls & {
            "execute",
            "executemany",
            "executescript",
            "create_subprocess_shell",
            "system",
            "popen",
        }


# --- bad parameters -------------------------------------------------------------------------------

BAD = (
    ("/api/history", "fields", ""),
    ("/api/history", "fields", "pv_w,nope"),
    ("/api/history", "fields", "pv_w,pv_w"),
    ("/api/history", "fields", "weather.temp"),
    ("/api/history", "fields", ",".join(["pv_w", "load_w", "grid_w", "battery_w", "soc_pct", "grid_hz"] * 3)),
    ("/api/history", "start", "yesterday"),
    ("/api/history", "start", "2026-01-01T00:00:00"),
    ("/api/history", "start", "0001-01-01T00:00:00+14:00"),
    ("/api/history", "start", "1999-12-31T23:00:00Z"),
    ("/api/history", "end", "9999-12-31T23:59:59Z"),
    ("/api/history", "resolution", "5min"),
    ("/api/history", "stats", "median"),
    ("/api/history", "bucket", "1h"),
    ("/api/sessions", "limit", "0"),
    ("/api/sessions", "limit", "1001"),
    ("/api/sessions", "limit", "-1"),
    ("/api/sessions", "limit", "1e3"),
    ("/api/sessions", "since", "2026-13-01T00:00:00Z"),
    ("/api/analytics/quality", "day", "2026-02-30"),
    ("/api/analytics/quality", "day", "26-01-01"),
    ("/api/analytics/quality", "fields", "price.import_price"),
    ("/api/analytics/energy", "day", "1900-01-01"),
    ("/api/analytics/energy", "day", "2026-1-1"),
    ("/api/analytics/voltage", "nominal_v", "230.5"),
    ("/api/analytics/voltage", "nominal_v", "1000"),
    ("/api/analytics/voltage", "critical", "21"),
    ("/api/analytics/voltage", "start", "2020-01-01T00:00:00Z"),
    ("/api/config/history", "text", "yes"),
    ("/api/config/history", "limit", "201"),
    ("/api/state", "fields", "pv_w"),
    ("/api/plan", "x", ""),
)


@pytest.mark.parametrize(("path", "parameter", "value"), BAD)
def test_a_bad_parameter_gets_400_naming_it_and_its_value(
    daemon: RunningDaemon, path: str, parameter: str, value: str
) -> None:
    query = {"fields": "pv_w"} if path == "/api/history" and parameter != "fields" else {}
    query[parameter] = value
    reply = daemon.get(f"{path}?{urllib.parse.urlencode(query)}")
    assert reply.status == 400, reply.text
    body = reply.json()
    assert problems(load(), load()["components"]["schemas"]["Error"], body) == []
    assert body["parameter"] == parameter
    assert body["value"] == value or (parameter == "fields" and body["value"] in value.split(","))
    assert parameter in body["error"]


def test_every_history_answer_is_bounded(daemon: RunningDaemon) -> None:
    ten_years = "/api/history?fields=pv_w&start=2016-01-01T00:00:00Z&end=2026-01-01T00:00:00Z&resolution=auto"
    reply = daemon.get(ten_years)
    assert reply.status == 400
    assert reply.json()["parameter"] == "start"
    fields = ",".join(["pv_w", "load_w", "grid_w", "battery_w", "soc_pct", "grid_v1", "grid_hz", "pv_w"])
    year = (
        f"/api/history?fields={fields}&start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z&stats=mean,min,max"
    )
    reply = daemon.get(year)
    assert reply.status == 400
    assert reply.json()["parameter"] == "fields"
    one_year_of_two = "/api/history?fields=pv_w,load_w&start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z"
    assert daemon.get(one_year_of_two).status == 200


def test_repeated_and_inconsistent_parameters_are_refused(daemon: RunningDaemon) -> None:
    reply = daemon.get("/api/history?fields=pv_w&fields=soc_pct")
    assert (reply.status, reply.json()["parameter"]) == (400, "fields")
    reply = daemon.get("/api/history?fields=pv_w&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z")
    assert (reply.status, reply.json()["parameter"]) == (400, "end")
    reply = daemon.get(
        "/api/history?fields=pv_w&resolution=raw&start=2026-01-01T00:00:00Z&end=2026-01-05T00:00:00Z"
    )
    assert (reply.status, reply.json()["parameter"]) == (400, "resolution")
    reply = daemon.get("/api/history?fields=%ff%fe")
    assert (reply.status, reply.json()["parameter"]) == (400, "fields")


QUERY_PARAMETERS = {
    "/api/history": ("fields", "start", "end", "resolution", "stats"),
    "/api/sessions": ("since", "until", "limit"),
    "/api/analytics/quality": ("day", "fields"),
    "/api/analytics/energy": ("day",),
    "/api/analytics/bill": (),
    "/api/analytics/voltage": ("start", "end", "nominal_v", "critical"),
    "/api/config/history": ("limit", "text"),
    "/api/state": (),
    "/api/plan": (),
}
_NAMES = st.sampled_from(
    ["pv_w", "soc_pct", "grid_v1", "temp_battery_c", "price.import_price", "plan.cost", "x", ""]
)
_VALUES = st.one_of(
    st.text(max_size=40),
    st.lists(_NAMES, min_size=1, max_size=20).map(",".join),
    st.datetimes(  # hypothesis takes naive bounds; timezones= decides the offset (None: naive, refused)
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001
        max_value=datetime(2040, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, None]),
    ).map(datetime.isoformat),
    st.dates(min_value=date(1850, 1, 1)).map(str),
    st.integers(-5, 5000).map(str),
    st.sampled_from(["auto", "raw", "1min", "15min", "1h", "mean,min", "true", "false", "count"]),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(sorted(QUERY_PARAMETERS)),
    data=st.data(),
)
def test_generated_queries_get_200_or_a_400_naming_a_parameter(
    daemon: RunningDaemon, path: str, data: Any
) -> None:
    names = (
        st.sampled_from([*QUERY_PARAMETERS[path], "unknown", "FIELDS"])
        if QUERY_PARAMETERS[path]
        else st.just("q")
    )
    query = data.draw(st.dictionaries(names, _VALUES, max_size=4))
    reply = daemon.get(f"{path}?{urllib.parse.urlencode(query)}")
    assert reply.status in (200, 400), (path, query, reply.status, reply.text)
    body = reply.json()
    document = load()
    if reply.status == 400:
        assert body["parameter"] in query or (path, body["parameter"]) == ("/api/history", "fields"), (
            query,
            body,
        )
    else:
        assert problems(document, response_schema(document, path, "GET", 200), body) == []


# --- writing --------------------------------------------------------------------------------------


def _active_override(daemon: RunningDaemon) -> Any:
    return daemon.get("/api/state").json()["override"]


def test_an_override_over_http_takes_effect_and_is_recorded(daemon: RunningDaemon) -> None:
    body = json.dumps({"mode": "force_charge", "power_w": 2500, "target_soc": 85, "minutes": 30}).encode()
    reply = daemon.request("POST", "/api/control/override", body)
    assert reply.status == 200, reply.text
    assert reply.json()["applied"].startswith("override force_charge")
    override = _active_override(daemon)
    assert (override["mode"], override["source"], override["power_w"], override["soc_pct"]) == (
        "force_charge",
        "http",
        2500.0,
        85.0,
    )
    wait_until(
        lambda: daemon.get("/api/state").json()["action"]["source"] == "override",
        10,
        "the override is followed",
    )
    assert daemon.request("DELETE", "/api/control/override").status == 200
    assert _active_override(daemon) is None
    reply = daemon.request("POST", "/api/control/mode", json.dumps({"mode": "hold"}).encode())
    assert reply.status == 200
    assert _active_override(daemon)["mode"] == "hold"
    assert daemon.request("POST", "/api/control/mode", json.dumps({"mode": "auto"}).encode()).status == 200
    assert _active_override(daemon) is None
    reply = daemon.request("DELETE", "/api/control/override")
    assert (reply.status, reply.json()["parameter"]) == (400, "override_cancel")


def test_goals_over_http_are_validated_stored_and_planned(daemon: RunningDaemon) -> None:
    document = load()
    body = json.dumps({"soc_pct": 80, "by": "07:00", "days": ["mon", "tue"]}).encode()
    reply = daemon.request("POST", "/api/control/goals/target", body)
    assert reply.status == 200, reply.text
    assert reply.json()["applied"] == "goal target 80 % by 07:00 (mon, tue)"
    reply = daemon.request(
        "POST", "/api/control/goals/reserve", json.dumps({"soc_pct": 40, "hours": 6}).encode()
    )
    assert reply.status == 200, reply.text
    state = daemon.get("/api/state").json()
    assert problems(document, response_schema(document, "/api/state", "GET", 200), state) == []
    assert state["goals"]["target"] == {
        "soc_pct": 80.0, "source": "http", "at": None, "by": "07:00", "days": ["mon", "tue"]
    }  # fmt: skip
    assert (state["goals"]["reserve"]["soc_pct"], state["goals"]["reserve_in_force_pct"]) == (40.0, 40.0)
    plan = daemon.get("/api/plan").json()
    assert problems(document, response_schema(document, "/api/plan", "GET", 200), plan) == []
    assert plan["trigger"] in ("goal (http)", "goals changed", "deviation")
    assert [g["kind"] for g in plan["plan"]["goals"]][-1] == "reserve"
    for path, bad, parameter in (
        ("/api/control/goals/target", b'{"soc_pct": 80, "by": "25:00"}', "by"),
        ("/api/control/goals/target", b'{"soc_pct": 80, "at": "2000-01-01T07:00:00+00:00"}', "at"),
        ("/api/control/goals/reserve", b'{"soc_pct": 101, "hours": 2}', "soc_pct"),
        ("/api/control/goals/reserve", b'{"soc_pct": 50, "hours": 2, "x": 1}', "x"),
    ):
        reply = daemon.request("POST", path, bad)
        assert (reply.status, reply.json()["parameter"]) == (400, parameter), bad
    assert daemon.get("/api/state").json()["goals"] == state["goals"]
    assert daemon.request("DELETE", "/api/control/goals/target").status == 200
    assert daemon.request("DELETE", "/api/control/goals/reserve").status == 200
    reply = daemon.request("DELETE", "/api/control/goals/reserve")
    assert (reply.status, reply.json()["parameter"]) == (400, "goal_cancel")
    assert daemon.get("/api/state").json()["goals"] == {
        "target": None,
        "reserve": None,
        "reserve_in_force_pct": None,
    }


def test_settings_and_replan_over_http(daemon: RunningDaemon) -> None:
    reply = daemon.request("PUT", "/api/control/settings/min_soc", json.dumps({"value": 22.5}).encode())
    assert reply.status == 200, reply.text
    assert daemon.get("/api/state").json()["battery"]["min_soc_pct"] == 22.5
    versions = daemon.get("/api/config/history?limit=1").json()["versions"]
    assert versions[0]["source"] == "http"
    reply = daemon.request("PUT", "/api/control/settings/min_soc", json.dumps({"value": 100}).encode())
    assert (reply.status, reply.json()["parameter"]) == (400, "min_soc")
    assert daemon.get("/api/state").json()["battery"]["min_soc_pct"] == 22.5
    reply = daemon.request("PUT", "/api/control/settings/price_cap", json.dumps({"value": None}).encode())
    assert reply.status == 200
    reply = daemon.request("PUT", "/api/control/settings/max_soc", json.dumps({"value": 1}).encode())
    assert (reply.status, reply.json()["parameter"]) == (400, "name")
    for bad in (
        b'{"value": true}',
        b'{"value": "20"}',
        b'{"value": NaN}',
        b'{"value": 1e999}',
        b"{}",
        b'{"v": 1}',
    ):
        reply = daemon.request("PUT", "/api/control/settings/min_soc", bad)
        assert reply.status == 400, bad
    before = daemon.get("/api/plan").json()["plan"]["created_at"]
    reply = daemon.request("POST", "/api/control/replan")
    assert reply.status == 200
    plan = daemon.get("/api/plan").json()
    assert plan["trigger"] in ("http", "deviation")
    assert plan["plan"]["created_at"] > before


def test_invalid_commands_are_refused_as_over_mqtt_and_change_nothing(daemon: RunningDaemon) -> None:
    before = _active_override(daemon)
    generated = [(k, p) for k, p in invalid_commands(600, seed=4242) if k in ("override", "mode")]
    assert len(generated) > 100
    for key, payload in generated:
        if key == "override":
            reply = daemon.request("POST", "/api/control/override", payload)
        else:
            try:
                body = json.dumps({"mode": payload.decode()}).encode()
            except UnicodeDecodeError:
                body = b'{"mode": "' + payload + b'"}'
            reply = daemon.request("POST", "/api/control/mode", body)
        assert reply.status == 400, (key, payload, reply.text)
        assert reply.json()["parameter"]
    for body in (
        b"",
        b"[]",
        b'{"mode": 1}',
        b'{"mode": "hold", "x": 1}',
        b'{"mode": "hold", "mode": "auto"}',
        b"x" * 5000,
    ):
        reply = daemon.request("POST", "/api/control/mode", body)
        assert reply.status in (400, 413), body
    assert _active_override(daemon) == before


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["mode", "power_w", "target_soc", "minutes", "expires", "x"]), children
            )
        ),
        max_leaves=8,
    )
)
def test_generated_override_bodies_never_fail_the_server(daemon: RunningDaemon, body: Any) -> None:
    reply = daemon.request("POST", "/api/control/override", json.dumps(body).encode())
    assert reply.status in (200, 400), reply.text
    if reply.status == 400:
        assert reply.json()["parameter"]


def test_write_endpoints_follow_the_config_switch(daemon: RunningDaemon) -> None:
    daemon.write_config(write=False)
    try:
        wait_until(lambda: daemon.get("/api/state").json().get("write_enabled") is False, 30, "the reload")
        before = _active_override(daemon)
        for route in (r for r in ROUTES if r.write):
            reply = daemon.request(
                route.method, _concrete(route.path), json.dumps({"mode": "hold", "minutes": 5}).encode()
            )
            assert reply.status == 403, route.path
            assert "write_enabled" in reply.json()["error"]
        assert _active_override(daemon) == before
    finally:
        daemon.write_config(write=True)
        wait_until(
            lambda: daemon.get("/api/state").json().get("write_enabled") is True, 30, "the reload back"
        )
