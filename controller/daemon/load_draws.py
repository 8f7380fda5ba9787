"""Each load's measured power as recorded, and a water heater's draw learned from it.

Every reading records each load's fresh measured power (``flex_load_<name>_w``) and whether it
followed its own control rather than a plan (``flex_load_<name>_own``, 1 or 0)
(:func:`measured_fields`). Once a local day, a water heater with ``draw_learn_days`` has its draw
learned from those (:mod:`controller.loads.hot_water`); the switcher's model and the plans take
the learned profile (:class:`DrawLearner`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from controller.config.loads import WaterHeaterConfig
from controller.config.models import HemsdConfig
from controller.control.load_model import measured_w
from controller.control.loads import LoadSwitcher
from controller.loads.hot_water import by_local_hour, learned_draw
from storage.datamanager import DataManager
from storage.records import Resolution

log = logging.getLogger(__name__)


def measured_fields(switcher: LoadSwitcher, now: datetime) -> dict[str, float]:
    """Each load's fresh measured power (``flex_load_<name>_w``), and whether it follows its
    own control rather than a plan (``flex_load_<name>_own``, 1 or 0), as recorded with the
    reading."""
    out = {}
    for name, load in switcher.loads.items():
        power = measured_w(load, now)
        if power is not None:
            out[f"flex_load_{name}_w"] = power
            on_its_own = load.schedule is None or load.unreliable or not load.enabled
            out[f"flex_load_{name}_own"] = 1.0 if on_its_own else 0.0
    return out


class DrawLearner:
    """The learning water heaters' draws, learned once a local day from their recorded power."""

    def __init__(
        self, config: HemsdConfig, data: DataManager, switcher: LoadSwitcher, now: Callable[[], datetime]
    ) -> None:
        self.config, self.data, self.switcher, self.now = config, data, switcher, now
        self.described: dict[str, str] = {}  # a water heater's draw, in words: learned or configured
        self._learned_on: date | None = None

    async def learn(self) -> None:
        """Once a local day: each learning water heater's draw from its recorded power."""
        tz = self.config.site.zone
        today = self.now().astimezone(tz).date()
        if self._learned_on == today:
            return
        for config in self.config.loads:
            if not isinstance(config, WaterHeaterConfig) or not config.draw_learn_days:
                continue
            first = today - timedelta(days=config.draw_learn_days)
            field, own = f"flex_load_{config.name}_w", f"flex_load_{config.name}_own"
            start = datetime.combine(first, time(0), tz).astimezone(UTC)
            result = await self.data.history(
                [field, own], start, datetime.combine(today, time(0), tz).astimezone(UTC), Resolution.HOUR1
            )
            if result.data is None:
                log.warning(
                    "load %s: its draw not learned, history unreadable: %s", config.name, result.message
                )
                return  # tried again at the next plan
            history = result.data
            days = config.draw_learn_days
            kwh = by_local_hour(history.times, history.fields[field].mean, first, days, tz)
            on_own = by_local_hour(history.times, history.fields[own].mean, first, days, tz, share=True)
            learned = learned_draw(kwh, on_own, config)
            runtime = self.switcher.loads[config.name]
            if learned is None:
                runtime.config = config
                whole = int(np.all(np.isfinite(kwh), axis=1).sum())
                self.described[config.name] = (
                    f"as configured ({whole} of {config.draw_learn_min_days} days recorded)"
                )
            else:
                runtime.config = config.model_copy(update={"draw_profile_kwh": learned.profile_kwh})
                hours = (
                    f"its hours from {learned.shape_days} days on its thermostat"
                    if learned.shape_days
                    else "its hours as configured (too few days on its thermostat)"
                )
                self.described[config.name] = (
                    f"learned from {learned.days} days: {learned.per_day_kwh:.1f} kWh a day, {hours}"
                )
            log.info("load %s: hot-water draw %s", config.name, self.described[config.name])
        self._learned_on = today
