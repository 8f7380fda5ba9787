"""The raw ring: time order, windows over rows with differing fields, memory bounded by its span."""

from __future__ import annotations

import math

import numpy as np

from storage.ring import RawRing


def test_window_keeps_time_order_and_fields_per_row() -> None:
    ring = RawRing(hours=1.0)
    ring.append(10.0, {"pv_w": 1.0, "soc_pct": 50.0})
    ring.append(30.0, {"pv_w": 3.0})
    ring.append(20.0, {"pv_w": 2.0, "grid_hz": 50.01})  # late: goes between the two
    times, columns = ring.window(0.0, 100.0, ["pv_w", "soc_pct", "grid_hz"])
    assert times.tolist() == [10.0, 20.0, 30.0]
    assert columns["pv_w"].tolist() == [1.0, 2.0, 3.0]
    assert columns["soc_pct"][0] == 50.0
    assert np.isnan(columns["soc_pct"][1:]).all()
    assert columns["grid_hz"][1] == 50.01
    assert np.isnan(columns["grid_hz"][[0, 2]]).all()
    times, _ = ring.window(15.0, 30.0, ["pv_w"])
    assert times.tolist() == [20.0]


def test_rows_older_than_the_span_are_dropped_and_freed() -> None:
    ring = RawRing(hours=1.0)  # 360 samples at 10 s
    for i in range(20_000):
        ring.append(i * 10.0, {"pv_w": float(i), "load_w": 1.0})
        # what is kept beyond the span (deleted in batches) stays within an eighth of it, or 64 rows
        assert len(ring._times) - len(ring) <= max(64, len(ring) // 8) + 1
        assert len(ring._layout) == len(ring._times)
        assert len(ring._values) == 2 * len(ring._times)
    assert len(ring) == 361
    assert ring.oldest == (20_000 - 361) * 10.0
    assert ring.newest == 19_999 * 10.0
    times, columns = ring.window(0.0, math.inf, ["pv_w"])
    assert times.size == 361
    assert columns["pv_w"][0] == 20_000 - 361


def test_late_rows_and_deletion_keep_each_rows_values_with_its_time() -> None:
    ring = RawRing(hours=1.0)
    expected: dict[float, dict[str, float]] = {}
    for i in range(3_000):
        t = i * 10.0 - (25.0 if i % 7 == 3 else 0.0)  # every seventh row arrives late
        fields = {"pv_w": t, "load_w": -t} if i % 3 else {"soc_pct": t / 10.0}
        ring.append(t, fields)
        expected[t] = fields
    times, columns = ring.window(0.0, math.inf, ["pv_w", "load_w", "soc_pct"])
    assert times.size == len(ring)
    assert np.all(np.diff(times) >= 0)
    for index, t in enumerate(times.tolist()):
        for name in ("pv_w", "load_w", "soc_pct"):
            value = expected[t].get(name, math.nan)
            assert columns[name][index] == value or (math.isnan(value) and math.isnan(columns[name][index]))
