"""Day-ahead forecast accuracy on a real household: the forecaster against "same as yesterday".

Data: ../shared/data/household/konstanz_residential4_hourly.csv (Konstanz, DE; hourly PV and
household consumption of a house with PV, heat pump and EV; Open Power System Data, CC BY 4.0).
For every local day of 2016 and 2017 the forecast is made at local midnight from the measured
past alone (the days before, on the same grid the daemon reads: from a UTC midnight), exactly as
the daemon's forecaster does without a weather source (``controller.forecast.combine.combine``),
with the PV blend weights learned from the accuracy records of the days before. Prints the mean
absolute error (W, hourly means) per quantity and its parts, the time per forecast (median, p95)
and the peak Python memory.

.venv/bin/python bench/bench_forecast.py [--history-days 14] [--csv PATH]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.config.models import ForecastConfig, PvArrayConfig
from controller.forecast.accuracy import DayAccuracy, DayAhead, score_day
from controller.forecast.combine import ComponentErrors, MeasuredHistory, combine, standard_load_w

FloatArray = npt.NDArray[np.float64]
SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "household" / "konstanz_residential4_hourly.csv"
BERLIN = ZoneInfo("Europe/Berlin")
STEP = timedelta(hours=1)
FIRST_DAY, LAST_DAY = date(2016, 1, 1), date(2017, 12, 31)
# The house's PV: about 10 kWp (hourly peak 8.8 kW); its orientation is not published, so south.
SITE = ForecastConfig(
    latitude=47.66,
    longitude=9.18,
    arrays=[PvArrayConfig(kwp=10.0, tilt_deg=30.0, azimuth_deg=180.0, losses_pct=14.0)],
    yearly_load_kwh=6500.0,
)


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    start: datetime  # UTC midnight
    pv_w: FloatArray
    load_w: FloatArray

    def index(self, moment: datetime) -> int:
        return (moment - self.start) // STEP


def load_series(path: Path) -> Series:
    times: list[datetime] = []
    pv: list[float] = []
    load: list[float] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            times.append(datetime.fromisoformat(row["interval_start_utc"].replace("Z", "+00:00")))
            pv.append(float(row["pv_kwh"]) * 1000.0)
            load.append(float(row["load_kwh_derived"]) * 1000.0)
    if any(b - a != STEP for a, b in itertools.pairwise(times)):
        raise SystemExit(f"{path}: expected consecutive hours")
    first = next(i for i, t in enumerate(times) if t.hour == 0)
    # 62 hours are slightly negative (meter timing): a household does not consume negative power
    return Series(times[first], np.array(pv[first:]), np.clip(np.array(load[first:]), 0.0, None))


def mae(forecast: FloatArray, measured: FloatArray) -> float:
    return float(np.mean(np.abs(forecast - measured)))


def run(series: Series, history_days: int) -> None:
    config = SITE.model_copy(update={"history_days": history_days})
    errors: list[ComponentErrors] = []
    rows: dict[str, list[float]] = {}
    timings: list[float] = []
    weights: list[float] = []
    records: list[DayAccuracy] = []

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    day = FIRST_DAY
    while day <= LAST_DAY:
        issued = datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(UTC)
        ends = (datetime.combine(day + timedelta(days=1), datetime.min.time(), BERLIN)).astimezone(UTC)
        grid_start = issued.replace(hour=0) - timedelta(days=history_days)
        lo, hi, stop = series.index(grid_start), series.index(issued), series.index(ends)
        history = MeasuredHistory(grid_start, STEP, series.pv_w[lo:hi], series.load_w[lo:hi])
        starts = [issued + STEP * k for k in range(stop - hi)]
        began = time.perf_counter()
        parts = combine(starts, config, BERLIN, history=history, errors=errors)
        weights.append(parts.weights["clear_sky"])
        timings.append(time.perf_counter() - began)
        ahead = DayAhead(day, issued, STEP, parts.pv_w, parts.load_w, parts.pv_model_w, parts.pv_history_w,
                         "clear_sky")  # fmt: skip
        pv, load = series.pv_w[hi:stop], series.load_w[hi:stop]
        day_before = slice(hi - 24, stop - 24)
        record = score_day(ahead, pv, load, series.pv_w[day_before], series.load_w[day_before])
        if record is None or record.pv_naive_mae_w is None or record.load_naive_mae_w is None:
            raise SystemExit(f"{day}: not scored (the data has no gaps in 2016-2017)")
        records.append(record)
        component = record.component_errors()
        if component is not None:
            errors.append(component)
        add("pv forecaster", record.pv_mae_w)
        add("pv naive (same as yesterday)", record.pv_naive_mae_w)
        add("pv part: site history", mae(parts.pv_history_w, pv) if parts.pv_history_w is not None else 0.0)
        add("pv part: clear-sky x recent days", mae(parts.pv_model_w, pv))
        add("load forecaster", record.load_mae_w)
        add("load naive (same as yesterday)", record.load_naive_mae_w)
        add(
            "load standard profile (yearly kWh)",
            mae(standard_load_w(config.yearly_load_kwh, starts, BERLIN), load),
        )
        day += timedelta(days=1)

    print(f"{len(records)} days {FIRST_DAY}..{LAST_DAY}, forecast at local midnight for the day, "
          f"{history_days} days of history")  # fmt: skip
    print(f"{'MAE of hourly means':<40} {'W':>8} {'vs naive':>9}")
    for quantity in ("pv", "load"):
        naive = float(np.mean(rows[f"{quantity} naive (same as yesterday)"]))
        for name, values in rows.items():
            if name.startswith(quantity):
                value = float(np.mean(values))
                print(f"{name:<40} {value:8.1f} {100.0 * (value / naive - 1.0):+8.1f}%")
    print(f"PV clear-sky weight: mean {statistics.mean(weights):.2f}, "
          f"range {min(weights):.2f}..{max(weights):.2f} (learned from the days before)")  # fmt: skip
    ms = sorted(t * 1000.0 for t in timings)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(f"time per day-ahead forecast: n={len(ms)} median {statistics.median(ms):.2f} ms  p95 {p95:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-days", type=int, default=ForecastConfig().history_days)
    parser.add_argument("--csv", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.csv.is_file():
        print(f"{args.csv} is absent: nothing to measure", file=sys.stderr)
        return 2
    tracemalloc.start()
    run(load_series(args.csv), args.history_days)
    _, peak = tracemalloc.get_traced_memory()
    print(f"peak Python memory: {peak / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
