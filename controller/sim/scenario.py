"""The canonical site scenario: a CSV time series of prices, PV and load at a uniform step.

Columns (header row, any order): ``time`` (interval start, ISO 8601 UTC), ``import_price``,
``export_price`` (currency/kWh; export may be negative), ``pv_w`` and ``load_w`` (mean W over
the interval, >= 0). One row per interval, sorted, step 15, 30 or 60 minutes; gaps of up to two
hours (a market's lost hour at the autumn clock change) repeat the row before. The
currency is the file name's last ``_xxx`` part (``kn4_de_2019_hourly_eur.csv`` -> EUR).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from controller.errors import HemsdError

FloatArray = npt.NDArray[np.float64]
COLUMNS = ("time", "import_price", "export_price", "pv_w", "load_w")
# Optional: a forecast service's PV or load for the interval, as it was issued the day before (an
# empty cell: none for that interval); hemsd backtest blends them with its own history forecast.
FORECAST_COLUMNS = ("pv_forecast_w", "load_forecast_w")
STEPS_MIN = (15, 30, 60)
UNKNOWN_CURRENCY = "XXX"  # ISO 4217: no currency
MAX_GAP = timedelta(hours=2)  # longer gaps are an error, shorter ones are filled


class ScenarioError(HemsdError):
    """A scenario file that cannot be used; the message names the file, row and column."""


@dataclass(frozen=True)
class Scenario:
    name: str
    currency: str
    start: datetime  # UTC, start of the first interval
    step: timedelta
    filled_intervals: int  # missing intervals filled with the row before (short gaps only)
    import_price: FloatArray
    export_price: FloatArray
    pv_w: FloatArray
    load_w: FloatArray
    pv_forecast_w: FloatArray | None = None  # NaN where the file gives none
    load_forecast_w: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.load_w.size)

    @property
    def step_h(self) -> float:
        return self.step.total_seconds() / 3600.0

    @property
    def steps_per_day(self) -> int:
        return round(24.0 / self.step_h)

    def time(self, i: int) -> datetime:
        return self.start + i * self.step

    def epoch_s(self) -> npt.NDArray[np.int64]:
        """Interval starts as seconds since the Unix epoch."""
        first = int(self.start.timestamp())
        return first + np.arange(len(self), dtype=np.int64) * int(self.step.total_seconds())

    def slice(self, first: int, stop: int) -> Scenario:
        if not 0 <= first < stop <= len(self):
            raise ValueError(f"scenario slice [{first}, {stop}) outside 0..{len(self)}")
        return Scenario(
            name=self.name,
            currency=self.currency,
            start=self.time(first),
            step=self.step,
            filled_intervals=0,
            import_price=self.import_price[first:stop],
            export_price=self.export_price[first:stop],
            pv_w=self.pv_w[first:stop],
            load_w=self.load_w[first:stop],
            pv_forecast_w=None if self.pv_forecast_w is None else self.pv_forecast_w[first:stop],
            load_forecast_w=None if self.load_forecast_w is None else self.load_forecast_w[first:stop],
        )


def write_scenario(scenario: Scenario, path: Path) -> None:
    """The scenario as a CSV that :func:`load_scenario` reads back (the forecast columns when present)."""
    optional = [
        (name, getattr(scenario, name)) for name in FORECAST_COLUMNS if getattr(scenario, name) is not None
    ]
    header = ",".join([*COLUMNS, *(name for name, _ in optional)])
    lines = [header]
    step = int(scenario.step.total_seconds())
    first = int(scenario.start.timestamp())
    for i in range(len(scenario)):
        t = datetime.fromtimestamp(first + i * step, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        row = [
            t,
            f"{scenario.import_price[i]:.5f}",
            f"{scenario.export_price[i]:.5f}",
            f"{scenario.pv_w[i]:.1f}",
            f"{scenario.load_w[i]:.1f}",
            *("" if not math.isfinite(values[i]) else f"{values[i]:.1f}" for _, values in optional),
        ]
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def currency_from_name(path: Path) -> str:
    suffix = path.stem.rsplit("_", 1)[-1]
    return suffix.upper() if len(suffix) == 3 and suffix.isalpha() else UNKNOWN_CURRENCY


def _parse_time(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScenarioError(f"{where}: not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ScenarioError(f"{where}: time must be UTC (e.g. 2019-01-01T00:00:00Z), got {text!r}")
    return value.astimezone(UTC)


def _parse_number(text: str, where: str, non_negative: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(f"{where}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ScenarioError(f"{where}: not a finite number: {text!r}")
    if non_negative and value < 0:
        raise ScenarioError(f"{where}: must be >= 0, got {text!r}")
    return value


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario CSV; :class:`ScenarioError` names the row and column at fault."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None
    if not rows:
        raise ScenarioError(f"{path}: empty file (expected a header: {','.join(COLUMNS)})")
    header = [name.strip() for name in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ScenarioError(f"{path}: row 1 (header): missing column(s) {', '.join(missing)}; got {header}")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise ScenarioError(f"{path}: row 1 (header): duplicated column(s) {', '.join(duplicated)}")
    index = {name: header.index(name) for name in COLUMNS}
    forecasts = [name for name in FORECAST_COLUMNS if name in header]
    data = rows[1:]
    if len(data) < 2:
        raise ScenarioError(f"{path}: needs at least 2 data rows, got {len(data)}")

    values = np.empty((len(data), 4 + len(forecasts)))
    times: list[datetime] = []
    for r, row in enumerate(data):
        line = r + 2
        if len(row) != len(header):
            raise ScenarioError(f"{path}: row {line}: {len(row)} fields, header has {len(header)}")
        times.append(_parse_time(row[index["time"]], f"{path}: row {line}, column time"))
        for c, name in enumerate(COLUMNS[1:]):
            where = f"{path}: row {line}, column {name}"
            values[r, c] = _parse_number(row[index[name]], where, non_negative=name in ("pv_w", "load_w"))
        for c, name in enumerate(forecasts, start=4):
            text = row[header.index(name)].strip()
            where = f"{path}: row {line}, column {name}"
            values[r, c] = math.nan if text == "" else _parse_number(text, where, non_negative=True)

    step = times[1] - times[0]
    if step not in tuple(timedelta(minutes=m) for m in STEPS_MIN):
        raise ScenarioError(
            f"{path}: row 3, column time: step {step} between the first rows; expected 15, 30 or 60 minutes"
        )
    # Sorted and uniform, except short gaps (a market's lost DST hour): those repeat the row before.
    positions = [0]
    for r in range(1, len(times)):
        gap = times[r] - times[r - 1]
        if gap <= timedelta(0) or gap % step or gap > MAX_GAP:
            raise ScenarioError(
                f"{path}: row {r + 2}, column time: {times[r].isoformat()} follows "
                f"{times[r - 1].isoformat()}; expected steps of {step} (sorted; gaps of at most {MAX_GAP})"
            )
        positions.append(positions[-1] + gap // step)
    index_of_row = np.asarray(positions)
    filled = np.searchsorted(index_of_row, np.arange(positions[-1] + 1), side="right") - 1
    values = values[filled]
    return Scenario(
        name=path.name,
        currency=currency_from_name(path),
        start=times[0],
        step=step,
        filled_intervals=int(positions[-1] + 1 - len(times)),
        import_price=values[:, 0].copy(),
        export_price=values[:, 1].copy(),
        pv_w=values[:, 2].copy(),
        load_w=values[:, 3].copy(),
        **{name: values[:, 4 + c].copy() for c, name in enumerate(forecasts)},
    )
