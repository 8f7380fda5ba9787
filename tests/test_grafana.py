"""The Grafana dashboard in config/grafana: its queries read what the Influx sink writes.

Every InfluxQL query (panels and variables) is checked against ``storage.records.MEASUREMENTS``:
each names a measurement of the sink and only fields and tags that measurement has. Then all
queries run on a real InfluxDB 1.x holding points encoded exactly as the sink encodes them, and the
cost panel's server-side expressions, evaluated the way Grafana evaluates them (series joined on
time), must give the net cost and the no-battery cost of the generated day.
"""

from __future__ import annotations

import ast
import json
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.servers import ServerProcess, influx_create_database, start_influxd

from drivers.inverter.types import Snapshot
from storage.lineprotocol import encode
from storage.records import MEASUREMENT_BY_NAME, Point, price_point, snapshot_point

GRAFANA = Path(__file__).resolve().parents[1] / "config" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "hemsd.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "hemsd-influxdb.yaml"
SITE, DEVICE, TZ = "home", "ET-1234", "Europe/Warsaw"
QUOTED = re.compile(r'"([^"]+)"')


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def influx_targets(panel: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in panel["targets"] if t["datasource"]["type"] == "influxdb"]


def all_queries() -> list[str]:
    board = dashboard()
    queries = [t["query"] for p in board["panels"] for t in influx_targets(p)]
    queries += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return queries


# --- static checks ----------------------------------------------------------------------------------


def test_dashboard_identity_is_stable() -> None:
    board = dashboard()
    assert board["uid"] == "hemsd-overview"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["title"] for p in board["panels"])
    provisioned_uid = re.search(r"^\s*uid:\s*(\S+)", DATASOURCE.read_text(encoding="utf-8"), re.M)
    assert provisioned_uid is not None
    variable = next(v for v in board["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] == provisioned_uid.group(1)
    assert variable["query"] == "influxdb"
    for panel in board["panels"]:
        for target in influx_targets(panel):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["rawQuery"] is True


def _subquery(query: str) -> tuple[str, str | None]:
    """(query with its FROM (subquery) replaced by a marker, the subquery) or (query, None)."""
    found = re.search(r"FROM\s*\(", query)
    if found is None:
        return query, None
    depth, end = 1, found.end()
    while depth:
        depth += {"(": 1, ")": -1}.get(query[end], 0)
        end += 1
    return query[: found.start()] + "FROM __subquery__" + query[end:], query[found.end() : end - 1]


def check_query(query: str) -> tuple[str, set[str], set[str]]:
    """(measurement, fields read, aliases defined) of one InfluxQL level; AssertionError on a name
    the measurement does not have."""
    level, inner = _subquery(query)
    aliases = set(re.findall(r'\bAS\s+"([^"]+)"', level))
    if inner is not None:
        measurement, fields, inner_aliases = check_query(inner)
        allowed_here = inner_aliases
    else:
        named = re.search(r'FROM\s+"([^"]+)"', level)
        assert named is not None, f"no measurement in {query!r}"
        measurement, fields, allowed_here = named.group(1), set(), set()
    spec = MEASUREMENT_BY_NAME.get(measurement)
    assert spec is not None, f"{query!r}: the sink writes no measurement {measurement!r}"
    names = [n for n in QUOTED.findall(level) if n not in aliases and n != measurement]
    for name in names:
        if name in spec.tags or name in allowed_here:
            continue
        readable = inner is None and spec.allows(name)  # fields only at the level that reads the measurement
        assert readable, f"{query!r}: {measurement} has no field or tag {name!r}"
        fields.add(name)
    return measurement, fields, aliases


@pytest.mark.parametrize("query", all_queries())
def test_every_query_reads_a_measurement_and_fields_the_sink_writes(query: str) -> None:
    measurement, fields, _ = check_query(query)
    if query.startswith("SELECT"):
        assert fields, f"{query!r} reads no field of {measurement}"
    else:
        assert re.search(r'WITH KEY = "([^"]+)"', query).group(1) in MEASUREMENT_BY_NAME[measurement].tags  # type: ignore[union-attr]


def test_the_checker_rejects_unknown_names() -> None:
    with pytest.raises(AssertionError, match="no field or tag 'pv_kw'"):
        check_query('SELECT mean("pv_kw") FROM "snapshot" WHERE $timeFilter')
    with pytest.raises(AssertionError, match="no measurement 'snapshots'"):
        check_query('SELECT mean("pv_w") FROM "snapshots"')
    with pytest.raises(AssertionError, match="no field or tag 'w'"):
        check_query('SELECT sum("w") FROM (SELECT mean("grid_w") AS "x" FROM "snapshot")')


def test_expressions_refer_to_queries_of_their_panel() -> None:
    for panel in dashboard()["panels"]:
        refs = {t["refId"] for t in panel["targets"]}
        for target in panel["targets"]:
            if target["datasource"]["type"] != "__expr__":
                continue
            used = (
                re.findall(r"\$(\w+)", target["expression"])
                if target["type"] == "math"
                else [target["expression"]]
            )
            assert set(used) <= refs - {target["refId"]}, (panel["title"], target)


# --- the queries on a real InfluxDB -------------------------------------------------------------


def site_profile(minute: int) -> tuple[float, float, float]:
    """(pv_w, load_w, battery_w) of the generated day: a sunny first hour that charges the battery
    and exports the rest, a dull second hour that discharges it and imports the rest (prices rise),
    load changing every quarter-hour."""
    quarter = minute // 15
    if minute < 60:
        return 3000.0, 600.0 + 100.0 * quarter, -1000.0
    return 500.0, 2000.0 + 150.0 * quarter, 1000.0


def import_price(slot: int) -> float:
    return 0.40 + 0.05 * slot


def export_price(slot: int) -> float:
    return 0.10 + 0.01 * slot


START = (datetime.now(UTC) - timedelta(hours=8)).replace(minute=0, second=0, microsecond=0)
MINUTES = 120


def generated_points() -> Iterator[Point]:
    for second in range(0, MINUTES * 60, 10):
        pv, load, battery = site_profile(second // 60)
        yield snapshot_point(
            Snapshot(
                time=START + timedelta(seconds=second),
                pv_w=pv,
                load_w=load,
                grid_w=load - pv - battery,
                battery_w=battery,
                soc_pct=40.0 + second / 720,
                grid_v=(230.0 + second % 7, 231.0, 229.0),
                grid_hz=50.0,
                temperatures={"battery": 22.0, "inverter": 35.0, "inverter_air": 30.0},
                counters_kwh={"import": 1000.0 + second / 3600},
            ),
            SITE,
            DEVICE,
        )
    for slot in range(-4, MINUTES // 15 + 4):
        start = START + timedelta(minutes=15 * slot)
        yield price_point(start, import_price(slot), export_price(slot), SITE, DEVICE)
        yield Point("forecast", start, {"pv_w": 1000.0, "load_w": 800.0}, {"site": SITE, "device": DEVICE})
        fields = {"soc_pct": 50.0 + slot, "grid_w": 100.0, "battery_w": -100.0, "cost": 0.05 * slot}
        yield Point("plan", start, fields, {"site": SITE, "device": DEVICE})


@pytest.fixture(scope="module")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_influxd(tmp_path_factory.mktemp("grafana")) as server:
        influx_create_database(server, "hemsd")
        body = "\n".join(encode(p) for p in generated_points()).encode()
        request = urllib.request.Request(
            f"{server.url}/write?db=hemsd&precision=ms", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204
        yield server


def grafana_macros(query: str) -> str:
    """The query as Grafana sends it for the generated range, site and all devices."""
    begin, end = START - timedelta(minutes=30), START + timedelta(minutes=MINUTES + 30)
    time_filter = f"time >= {int(begin.timestamp() * 1000)}ms and time <= {int(end.timestamp() * 1000)}ms"
    return (
        query.replace("$timeFilter", time_filter)
        .replace("$__interval", "1m")
        .replace("$site", SITE)
        .replace("$device", ".*")
        .replace("$tz", TZ)
    )


def run(server: ServerProcess, query: str) -> dict[float, float]:
    """{epoch seconds: value} of the one series a panel query returns (first value column)."""
    params = urllib.parse.urlencode({"db": "hemsd", "q": grafana_macros(query), "epoch": "s"})
    with urllib.request.urlopen(f"{server.url}/query?{params}", timeout=10) as response:
        result = json.loads(response.read())["results"][0]
    assert "error" not in result, (query, result["error"])
    if "series" not in result:
        return {}
    return {row[0]: row[1] for row in result["series"][0]["values"] if row[1] is not None}


def test_every_panel_query_returns_data(influxd: ServerProcess) -> None:
    for panel in dashboard()["panels"]:
        for target in influx_targets(panel):
            assert run(influxd, target["query"]), (panel["title"], target["refId"])
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            params = urllib.parse.urlencode({"db": "hemsd", "q": grafana_macros(variable["query"])})
            with urllib.request.urlopen(f"{influxd.url}/query?{params}", timeout=10) as response:
                values = json.loads(response.read())["results"][0]["series"][0]["values"]
            assert [row[1] for row in values] in ([SITE], [DEVICE])


def evaluate(expression: str, series: dict[str, dict[float, float]]) -> dict[float, float]:
    """A Grafana math expression over series joined on the timestamps they all have."""
    tree = ast.parse(re.sub(r"\$(\w+)", r"\1", expression), mode="eval").body
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    times = set.intersection(*(set(series[n]) for n in names))

    def value(node: ast.expr, t: float) -> float:
        if isinstance(node, ast.Name):
            return series[node.id][t]
        assert isinstance(node, ast.BinOp), ast.dump(node)
        left, right = value(node.left, t), value(node.right, t)
        operations = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}
        return operations[type(node.op)]

    return {t: value(tree, t) for t in sorted(times)}


def expected_costs() -> tuple[float, float]:
    """(net cost, cost without the battery) of the generated day, minute by minute."""
    net = baseline = 0.0
    for minute in range(MINUTES):
        pv, load, battery = site_profile(minute)
        slot = minute // 15
        for flow, total in ((load - pv - battery, "net"), (load - pv, "baseline")):
            kwh = flow / 60_000
            money = kwh * (import_price(slot) if kwh > 0 else export_price(slot))
            if total == "net":
                net += money
            else:
                baseline += money
    return net, baseline


def test_cost_panel_expressions_give_the_cost_and_savings_of_the_day(influxd: ServerProcess) -> None:
    panel = next(p for p in dashboard()["panels"] if p["title"] == "Today: cost and savings")
    series = {t["refId"]: run(influxd, t["query"]) for t in influx_targets(panel)}
    for target in panel["targets"]:
        if target.get("type") == "math":
            series[target["refId"]] = evaluate(target["expression"], series)
    reduced = {
        t["refId"]: math.fsum(series[t["expression"]].values())
        for t in panel["targets"]
        if t.get("type") == "reduce"
    }
    net, baseline = expected_costs()
    assert net > 0
    assert baseline > net  # the generated day is one where the battery pays
    assert reduced["Net cost"] == pytest.approx(net, rel=1e-9)
    assert reduced["Without battery"] == pytest.approx(baseline, rel=1e-9)
    assert reduced["Savings"] == pytest.approx(baseline - net, rel=1e-9)


def test_energy_per_day_adds_up_to_the_generated_flows(influxd: ServerProcess) -> None:
    panel = next(p for p in dashboard()["panels"] if p["title"] == "Energy per day")
    totals = {t["alias"]: math.fsum(run(influxd, t["query"]).values()) for t in influx_targets(panel)}
    flows = [site_profile(m) for m in range(MINUTES)]
    grid = [load - pv - battery for pv, load, battery in flows]
    assert totals["Import"] == pytest.approx(sum(max(0.0, g) for g in grid) / 60_000)
    assert totals["Export"] == pytest.approx(sum(max(0.0, -g) for g in grid) / 60_000)
    assert totals["PV"] == pytest.approx(sum(pv for pv, _, _ in flows) / 60_000)
    assert totals["Load"] == pytest.approx(sum(load for _, load, _ in flows) / 60_000)
