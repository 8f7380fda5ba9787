"""Our line-protocol encoder writes the bytes influxdb-client's ``Point`` wrote before it replaced it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client.client.write import point as client_point

from drivers.inverter.types import Snapshot
from storage.lineprotocol import FieldValue, encode, encode_line, timestamp
from storage.records import Point, forecast_point, plan_point, price_point, snapshot_point, to_ms

T0 = datetime(2026, 3, 29, 0, 59, 59, 999_500, tzinfo=UTC)  # a sub-millisecond part that rounds up
ClientPoint: Any = client_point.Point  # untyped in influxdb-client
REPO = Path(__file__).resolve().parents[1]
TRICKY = ["home", "my home", "a,b", "k=v", "tab\there", "new\nline", "cr\rx", "ends\\", 'quo"te', "Zürich ☀"]


def reference(measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ms: int) -> str:
    """How storage.influx encoded a line with influxdb-client (time given as integer milliseconds)."""
    line = ClientPoint(measurement).time(ms, "ms")
    for key, value in tags.items():
        line.tag(key, value)
    for name, field in fields.items():
        line.field(name, field)
    return str(line.to_line_protocol())


def snapshot(t: datetime, **kw: float) -> Snapshot:
    return Snapshot(
        time=t,
        pv_w=kw.get("pv_w", 3120.0),
        load_w=-0.0,
        grid_w=-1234.5678,
        battery_w=1e-7,
        soc_pct=100.0,
        grid_v=(230.1, 231.25, 229.8),
        grid_hz=50.01,
        temperatures={"battery": 21.5, "inverter": float("nan")},
        counters_kwh={"grid_import": 12345678.9, "grid_export": 1e16, "pv": 0.1 + 0.2},
    )


def daemon_points() -> list[Point]:
    points: list[Point] = []
    for i, site in enumerate(TRICKY):
        t = T0 + timedelta(seconds=10 * i, microseconds=137 * i)
        device = TRICKY[-1 - i]
        points += [
            snapshot_point(snapshot(t, pv_w=float(i) * 1.1), site, device),
            price_point(t, 0.61 + i, -0.25, site, device),
            forecast_point(t, 1e-300, 1.7976931348623157e308, site, device),
            plan_point(t, 55.0, -4200.0, 3.0e-5, 12.345, site, device),
        ]
    return points


def test_daemon_points_encode_as_influxdb_client_encoded_them() -> None:
    for point in daemon_points():
        assert encode(point) == reference(point.measurement, point.tags, point.fields, to_ms(point.time))


def test_tricky_names_and_every_field_type_encode_as_influxdb_client_encodes_them() -> None:
    for name in TRICKY:
        tags = {name: name, "b": "x", "empty": "", "a": name}
        fields: dict[str, FieldValue] = {
            name: 1.5,
            "int": -42,
            "big": 2**70,
            "yes": True,
            "no": False,
            "text": name + ' \\"',
            "nan": float("nan"),
            "inf": float("-inf"),
            "whole": 3.0,
        }
        line = encode_line(name, tags, fields, T0)
        assert line == reference(name, tags, fields, to_ms(T0))
    assert encode_line("m", {"t": "ends\\"}, {"f": 1}, T0).startswith("m,t=ends\\  f=1i ")


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(
    lambda s: not s.startswith("#")  # influxdb-client warns: the line would be a comment
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.booleans(), names
)


@settings(max_examples=300, deadline=None)
@given(
    measurement=names,
    tags=st.dictionaries(names, st.text(max_size=8), max_size=4),
    fields=st.dictionaries(names, values, min_size=1, max_size=6),
    ms=st.integers(0, 2**45),
)
def test_generated_lines_match_influxdb_client(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], ms: int
) -> None:
    expected = reference(measurement, tags, fields, ms)
    t = datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=ms)
    if expected == "":  # influxdb-client writes nothing when no field is finite; we refuse
        with pytest.raises(ValueError, match="no finite field"):
            encode_line(measurement, tags, fields, t)
    else:
        assert encode_line(measurement, tags, fields, t) == expected


def test_timestamps_in_each_precision() -> None:
    t = datetime(2026, 1, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    seconds = int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp())
    assert timestamp(t, "s") == seconds
    assert timestamp(t, "ms") == seconds * 1000 + 123 == to_ms(t)
    assert timestamp(t, "us") == seconds * 1_000_000 + 123_456
    assert timestamp(t, "ns") == seconds * 1_000_000_000 + 123_456_000
    assert encode_line("m", {}, {"f": 1.25}, t, "s") == f"m f=1.25 {seconds}"


def test_the_daemon_does_not_import_influxdb_client() -> None:
    code = "import sys, controller.daemon.app, storage.datamanager; print('influxdb_client' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"
