"""How good the day-ahead forecast was: per local day, its mean absolute error against measurements.

The forecaster keeps, for the next local day, the last forecast it made before that day began
(:class:`DayAhead`: the final PV and load, and the PV model and history parts). Once the day is
over and measured, :func:`score_day` compares them (:class:`DayAccuracy`), next to a naive
"same as yesterday" forecast, and the record feeds the PV blend weights. Both are plain JSON in
the data manager's state so that a restart keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.forecast.combine import ComponentErrors, blend_errors
from storage.records import JsonValue

FloatArray = npt.NDArray[np.float64]
MIN_MEASURED_SHARE = 0.9  # a day with less of its intervals measured is not scored


class AccuracyDataError(ValueError):
    """A stored forecast or accuracy record does not have the expected shape."""


def _floats(values: FloatArray) -> list[JsonValue]:
    return [round(float(v), 1) if math.isfinite(v) else None for v in values]


def _array(document: Mapping[str, Any], name: str, size: int | None = None) -> FloatArray:
    raw = document.get(name)
    if not isinstance(raw, list) or (size is not None and len(raw) != size):
        raise AccuracyDataError(f"{name} must be a list of {size or 'some'} numbers, got {raw!r:.60}")
    try:
        return np.array([math.nan if v is None else float(v) for v in raw], dtype=np.float64)
    except (TypeError, ValueError):
        raise AccuracyDataError(f"{name} holds something that is not a number: {raw!r:.60}") from None


@dataclass(frozen=True, slots=True, eq=False)
class DayAhead:
    """The forecast for one local day as it stood when the day began."""

    day: date
    start: datetime  # first interval's start, UTC
    step: timedelta
    pv_w: FloatArray
    load_w: FloatArray
    pv_model_w: FloatArray
    pv_history_w: FloatArray | None
    model_kind: str  # "weather" when the weather forecast covered the whole day, else "clear_sky"

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "day": self.day.isoformat(),
            "start": self.start.isoformat(),
            "step_s": int(self.step.total_seconds()),
            "pv_w": _floats(self.pv_w),
            "load_w": _floats(self.load_w),
            "pv_model_w": _floats(self.pv_model_w),
            "pv_history_w": None if self.pv_history_w is None else _floats(self.pv_history_w),
            "model_kind": self.model_kind,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> DayAhead:
        try:
            day = date.fromisoformat(document["day"])
            start = datetime.fromisoformat(document["start"]).astimezone(UTC)
            step = timedelta(seconds=int(document["step_s"]))
            kind = str(document["model_kind"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AccuracyDataError(
                f"day-ahead forecast: bad or missing day/start/step_s/model_kind ({exc})"
            ) from None
        pv = _array(document, "pv_w")
        history = None if document.get("pv_history_w") is None else _array(document, "pv_history_w", pv.size)
        return cls(day, start, step, pv, _array(document, "load_w", pv.size),
                   _array(document, "pv_model_w", pv.size), history, kind)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DayAccuracy:
    """One day's forecast against what was measured (W are means over the day's intervals)."""

    day: date
    pv_mae_w: float
    load_mae_w: float
    pv_naive_mae_w: float | None  # "same as yesterday": None when yesterday was not measured
    load_naive_mae_w: float | None
    pv_kwh: float
    pv_forecast_kwh: float
    load_kwh: float
    load_forecast_kwh: float
    model_kind: str
    pv_model_mae_w: float | None  # the PV parts on their own (None: the day had no history part)
    pv_history_mae_w: float | None
    blend_mae_w: tuple[float, ...] | None  # see ComponentErrors

    def to_json(self) -> dict[str, JsonValue]:
        document: dict[str, JsonValue] = {
            k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()
        }
        document["day"] = self.day.isoformat()
        if self.blend_mae_w is not None:
            document["blend_mae_w"] = [round(v, 3) for v in self.blend_mae_w]
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> DayAccuracy:
        try:
            values = dict(document)
            values["day"] = date.fromisoformat(values["day"])
            if values.get("blend_mae_w") is not None:
                values["blend_mae_w"] = tuple(float(v) for v in values["blend_mae_w"])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise AccuracyDataError(f"accuracy record: {exc}") from None

    def component_errors(self) -> ComponentErrors | None:
        if self.blend_mae_w is None:
            return None
        return ComponentErrors(self.model_kind, self.blend_mae_w)


def _mae(forecast: FloatArray, measured: FloatArray) -> float:
    return float(np.mean(np.abs(forecast - measured)))


def score_day(
    ahead: DayAhead,
    measured_pv_w: FloatArray,
    measured_load_w: FloatArray,
    yesterday_pv_w: FloatArray | None = None,
    yesterday_load_w: FloatArray | None = None,
) -> DayAccuracy | None:
    """The day's record, over the intervals measured; None when less than 90 % were measured.

    All arrays are aligned with ``ahead``'s intervals (NaN = not measured).
    """
    pv = np.asarray(measured_pv_w, dtype=np.float64)
    load = np.asarray(measured_load_w, dtype=np.float64)
    known = np.isfinite(pv) & np.isfinite(load) & np.isfinite(ahead.pv_w) & np.isfinite(ahead.load_w)
    if pv.size != ahead.pv_w.size or known.mean() < MIN_MEASURED_SHARE:
        return None
    # hours each measured interval stands for: the day's energy, scaled up over unmeasured ones
    hours = ahead.step / timedelta(hours=1) * pv.size / known.sum()

    def naive(yesterday: FloatArray | None, measured: FloatArray) -> float | None:
        if yesterday is None or yesterday.size != measured.size:
            return None
        both = known & np.isfinite(yesterday)
        return _mae(yesterday[both], measured[both]) if both.mean() >= MIN_MEASURED_SHARE else None

    model_mae = history_mae = blends = None
    if ahead.pv_history_w is not None and np.isfinite(ahead.pv_model_w[known]).all():
        model, past, measured = ahead.pv_model_w[known], ahead.pv_history_w[known], pv[known]
        model_mae, history_mae = _mae(model, measured), _mae(past, measured)
        blends = blend_errors(model, past, measured)
    return DayAccuracy(
        day=ahead.day,
        pv_mae_w=_mae(ahead.pv_w[known], pv[known]),
        load_mae_w=_mae(ahead.load_w[known], load[known]),
        pv_naive_mae_w=naive(yesterday_pv_w, pv),
        load_naive_mae_w=naive(yesterday_load_w, load),
        pv_kwh=float(pv[known].sum()) * hours / 1000.0,
        pv_forecast_kwh=float(ahead.pv_w[known].sum()) * hours / 1000.0,
        load_kwh=float(load[known].sum()) * hours / 1000.0,
        load_forecast_kwh=float(ahead.load_w[known].sum()) * hours / 1000.0,
        model_kind=ahead.model_kind,
        pv_model_mae_w=model_mae,
        pv_history_mae_w=history_mae,
        blend_mae_w=blends,
    )


@dataclass(frozen=True, slots=True)
class AccuracySummary:
    """The latest scored day and the mean over the recent ones, for health reports."""

    days: int
    last: DayAccuracy | None
    pv_mae_w: float | None  # mean over ``days``
    load_mae_w: float | None
    pv_naive_mae_w: float | None
    load_naive_mae_w: float | None

    def to_json(self) -> dict[str, JsonValue]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "days": self.days,
            "last_day": None if self.last is None else self.last.day.isoformat(),
            "last_pv_mae_w": None if self.last is None else rounded(self.last.pv_mae_w),
            "last_load_mae_w": None if self.last is None else rounded(self.last.load_mae_w),
            "pv_mae_w": rounded(self.pv_mae_w),
            "load_mae_w": rounded(self.load_mae_w),
            "pv_naive_mae_w": rounded(self.pv_naive_mae_w),
            "load_naive_mae_w": rounded(self.load_naive_mae_w),
        }


def summarise(records: Sequence[DayAccuracy], days: int = 7) -> AccuracySummary:
    recent = list(records)[-days:]

    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if known else None

    return AccuracySummary(
        days=len(recent),
        last=recent[-1] if recent else None,
        pv_mae_w=mean([r.pv_mae_w for r in recent]),
        load_mae_w=mean([r.load_mae_w for r in recent]),
        pv_naive_mae_w=mean([r.pv_naive_mae_w for r in recent]),
        load_naive_mae_w=mean([r.load_naive_mae_w for r in recent]),
    )
