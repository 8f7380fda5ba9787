"""A forecast service's columns in a scenario, blended with hemsd's own history forecast.

A scenario may carry ``pv_forecast_w`` and ``load_forecast_w``: what a service (Solcast,
Forecast.Solar, Open-Meteo through Home Assistant) forecast for each interval the day before. In a
realistic backtest they are blended as the daemon blends its weather forecast with the history
forecast (:func:`controller.forecast.combine.model_weight`): w·service + (1 - w)·history, w
learned from how each blend weight did on the days before (the prior until a week is scored).
An interval's service forecast is known from the start of the day before it (days counted from
the scenario's first interval); where the file has none (an empty cell) the history forecast
stands alone.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from controller.forecast.combine import ComponentErrors, blend_errors, model_weight
from controller.forecast.history import forecast_load, forecast_pv
from controller.sim.scenario import Scenario

FloatArray = npt.NDArray[np.float64]
KIND = "weather"  # the daemon's model kind for a forecast from outside: its prior weight applies


class ServiceForecast:
    """Blends one scenario's service columns into the history forecast, interval by interval."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.spd = scenario.steps_per_day
        self._scored_until = 1  # days before this one have a record (day 0 has no history forecast)
        self._records: dict[str, list[ComponentErrors]] = {"pv": [], "load": []}

    @staticmethod
    def present(scenario: Scenario) -> bool:
        return scenario.pv_forecast_w is not None or scenario.load_forecast_w is not None

    def _score(self, today: int) -> None:
        """Record how each blend weight did on every finished day not yet scored."""
        s, spd = self.scenario, self.spd
        for day in range(self._scored_until, today):
            first, stop = day * spd, (day + 1) * spd
            history = {
                "pv": forecast_pv(s.pv_w[:first], spd, spd),
                "load": forecast_load(s.load_w[:first], spd, spd),
            }
            for name, service, measured in (
                ("pv", s.pv_forecast_w, s.pv_w),
                ("load", s.load_forecast_w, s.load_w),
            ):
                if service is None:
                    continue
                known = np.isfinite(service[first:stop])
                if known.any():
                    errors = blend_errors(
                        service[first:stop][known], history[name][known], measured[first:stop][known]
                    )
                    self._records[name].append(ComponentErrors(KIND, errors))
        self._scored_until = max(self._scored_until, today)

    def blend(self, i: int, stop: int, pv_w: FloatArray, load_w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The forecast for intervals [i, stop) given hemsd's history forecast ``pv_w``, ``load_w``."""
        today = i // self.spd
        self._score(today)
        known_until = min(stop, (today + 2) * self.spd)  # issued the day before: up to tomorrow's end
        out = []
        for name, own, service in (
            ("pv", pv_w, self.scenario.pv_forecast_w),
            ("load", load_w, self.scenario.load_forecast_w),
        ):
            if service is None:
                out.append(own)
                continue
            part = np.full(stop - i, np.nan)
            part[: known_until - i] = service[i:known_until]
            weight = model_weight(KIND, self._records[name])
            out.append(np.where(np.isfinite(part), weight * part + (1.0 - weight) * own, own))
        return out[0], out[1]
