"""What the planner sees at each interval of a replay.

``perfect`` forecasts give the planner the true future. ``realistic`` ones give it only the
prices a day-ahead market has published (the next local day's from 13:00) and PV/load as the
daemon forecasts them from its history (:func:`controller.forecast.history.forecast_pv`;
:func:`controller.forecast.combine.load_forecast_w`, with the day type, over the daemon's
default ``history_days`` before the UTC day), fed with the past alone (blended with a forecast
service's columns where the scenario has them, :mod:`controller.sim.service_forecast`);
``PlannerSettings.exact`` gives parts of them (PV, load) as they will be measured instead, to
tell what each part costs. ``yesterday`` gives the realistic prices with PV and load as they were
at the same time a day before. For the recourse planner, the departures from the forecast come
from hindcasts of the scenario's past.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.config.models import ForecastConfig
from controller.forecast.combine import epoch_local_seconds, load_forecast_w
from controller.forecast.errors import DayErrors, ErrorTable, hindcast_day, settled_days
from controller.forecast.history import forecast_pv
from controller.physics import BatteryParams
from controller.planner.periods import Periods, periods_of
from controller.planner.plan import Horizon
from controller.sim.scenario import Scenario
from controller.sim.service_forecast import ServiceForecast
from controller.sim.settings import PlannerSettings

FloatArray = npt.NDArray[np.float64]
PUBLICATION_HOUR = 13  # local hour from which the next day's day-ahead prices are known
HISTORY_DAYS: int = ForecastConfig.model_fields["history_days"].default


def default_timezone(scenario: Scenario) -> ZoneInfo:
    """The market's zone: Warsaw for PLN scenarios, Berlin (CET, also Brussels' offset) otherwise."""
    return ZoneInfo("Europe/Warsaw" if scenario.currency == "PLN" else "Europe/Berlin")


def published_stop(scenario: Scenario, tz: ZoneInfo) -> npt.NDArray[np.intp]:
    """For each interval, the end (exclusive index) of the prices known at its start."""
    stops = np.empty(len(scenario), dtype=np.intp)
    step_s = scenario.step.total_seconds()
    cache: dict[tuple[object, int], int] = {}
    for i, epoch in enumerate(scenario.epoch_s().tolist()):
        local = datetime.fromtimestamp(epoch, tz)
        days = 2 if local.hour >= PUBLICATION_HOUR else 1
        key = (local.date(), days)
        if key not in cache:
            midnight = datetime.combine(local.date() + timedelta(days=days), datetime.min.time(), tz)
            cache[key] = round((midnight - scenario.start).total_seconds() / step_s)
        stops[i] = min(cache[key], len(scenario))
    return stops


class Forecasts:
    """What the planner sees at each interval: the horizon it plans over and the value of the
    energy left at its end (for the recourse planner also the departures and their chances).
    Each depends only on the scenario's past and the published prices, not on the battery."""

    def __init__(
        self,
        scenario: Scenario,
        params: BatteryParams,
        settings: PlannerSettings,
        load_w: FloatArray | None = None,
    ) -> None:
        self.scenario, self.params, self.settings = scenario, params, settings
        # the load history the forecasts are made from (the caller may fill in the past as it goes)
        self.load_w = scenario.load_w if load_w is None else load_w
        n, dt = len(scenario), scenario.step_h
        self.realistic = settings.forecast in ("realistic", "yesterday")
        self.persistence = settings.forecast == "yesterday"
        stops = np.minimum(np.arange(n) + max(1, round(settings.horizon_hours / dt)), n)
        tz = settings.timezone or default_timezone(scenario)
        if self.realistic:
            stops = np.minimum(stops, published_stop(scenario, tz))
        self.stops = stops
        self.epoch = scenario.epoch_s()
        if self.realistic and not self.persistence:
            self.local = epoch_local_seconds(self.epoch, tz)
            # the daemon's history: from the UTC midnight HISTORY_DAYS before the day of each interval
            step_s = round(scenario.step.total_seconds())
            since = self.epoch - self.epoch % 86400 - HISTORY_DAYS * 86400 - self.epoch[0]
            self.history_first = np.maximum(-(-since // step_s), 0)
        self.service = (
            ServiceForecast(scenario)
            if self.realistic and not self.persistence and ServiceForecast.present(scenario)
            else None
        )
        self.spread = (
            Spread(scenario, round(settings.horizon_hours / dt), settings.exact)
            if settings.planner == "recourse" and self.realistic and not self.persistence
            else None
        )

    def planned(self, i: int) -> bool:
        """Whether interval ``i`` is planned: realistic forecasts need a day of history first
        (before it, plain self-use)."""
        return not (self.realistic and i < self.scenario.steps_per_day)

    def horizon(self, i: int) -> tuple[Horizon, float]:
        """The horizon seen at interval ``i`` and the value per kWh left stored at its end."""
        s, stop, spd = self.scenario, int(self.stops[i]), self.scenario.steps_per_day
        pv, load = s.pv_w, self.load_w
        if self.persistence:
            yesterday = i - spd + np.arange(stop - i) % spd
            pv_f, load_f = pv[yesterday], load[yesterday]
        elif self.realistic:
            pv_f, load_f = forecast_pv(pv[:i], stop - i, spd), self.load_forecast(i, stop)
            if self.service is not None:
                pv_f, load_f = self.service.blend(i, stop, pv_f, load_f)
            exact = self.settings.exact
            pv_f = pv[i:stop] if "pv" in exact else pv_f
            load_f = load[i:stop] if "load" in exact else load_f
        else:
            pv_f, load_f = pv[i:stop], load[i:stop]
        h = Horizon(np.full(stop - i, s.step_h), pv_f, load_f, s.import_price[i:stop], s.export_price[i:stop])
        # Past the scenario's end nothing is bought or sold: energy left then is worth
        # nothing, as for the optimum the results are compared with.
        value = 0.0 if stop == len(s) else self.settings.end_value.per_stored_kwh(self.params, h.import_price)
        return h, value

    def load_forecast(self, i: int, stop: int) -> FloatArray:
        """The daemon's load forecast for intervals [i, stop) from its history before ``i``."""
        first, ahead = int(self.history_first[i]), np.arange(stop - i)
        load, local = self.load_w[first:i], self.local[first:i]
        return load_forecast_w(load, local, ahead, self.local[i:stop], self.scenario.steps_per_day)

    def departures(self, i: int, n: int) -> tuple[FloatArray, FloatArray | None]:
        return self.spread.at(i, n) if self.spread is not None else (np.zeros((n, 1)), None)

    def periods(self, i: int, n: int) -> Periods | None:
        """The settlement periods of the ``n`` intervals from ``i`` (None: planned per interval)."""
        netting = self.settings.netting_s
        return None if netting is None else periods_of(self.epoch[i : i + n], netting)


class Spread:
    """Net-load departures for the recourse planner from hindcasts of the scenario's past
    (:func:`controller.forecast.errors.history_spread`, each day's hindcast kept once made)."""

    def __init__(self, scenario: Scenario, n_ahead: int, exact: frozenset[str] = frozenset()) -> None:
        self.scenario, self.n_ahead, self.exact = scenario, n_ahead, exact
        self.spd = scenario.steps_per_day
        self.days: dict[int, DayErrors] = {}
        self.table: tuple[int, ErrorTable] | None = None

    def at(self, i: int, n: int) -> tuple[FloatArray, FloatArray]:
        """The departures (n, K) of the ``n`` slots from interval ``i`` and their transitions."""
        today = i // self.spd
        if self.table is None or self.table[0] != today:
            s, now = self.scenario, today * self.spd
            wanted = settled_days(now, self.spd, self.n_ahead)
            self.days = {
                d: self.days[d]
                if d in self.days
                else hindcast_day(s.pv_w, s.load_w, self.spd, d, self.n_ahead, now, self.exact)
                for d in wanted
            }
            self.table = (today, ErrorTable.from_days(self.days.values(), self.spd))
        ahead = np.arange(n)
        table, hour = self.table[1], ((i + ahead) % self.spd) * 24 // self.spd
        return table.spread_w(ahead * self.scenario.step_h, hour), table.transitions_for(hour)
