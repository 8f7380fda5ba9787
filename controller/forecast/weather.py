"""The weather-driven PV forecast: the configured source per array, summed, with a last-good copy.

``[forecast.weather] source`` selects Open-Meteo (global tilted irradiance per array, turned into
power by :mod:`controller.forecast.pv_model`; the past ``calibration_days`` come along for calibration)
or Forecast.Solar (its power estimate per array). Arrays add up; an interval counts only when
every array has a value for it, and a fetch counts only when every array answered. Open-Meteo's
air temperature is kept beside the PV (:meth:`WeatherService.temperatures`: a heat pump's demand
follows it).

What was fetched is kept per 15-minute interval in the data manager's state (SQLite), so a
restart does not refetch before ``refresh_min`` and an outage serves the last good forecast,
reported as stale. After a failure the source is tried again after ``retry_min``. A forecast
waits a few seconds at most for a fetch (an unreachable source costs its retries' timeouts,
which must not hold up the plan); a slower fetch completes in the background.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from controller.config.models import ForecastConfig, PvArrayConfig
from controller.forecast.pv_model import api_plane, array_power_w
from drivers import DriverError
from drivers.http import HttpClient, RetryPolicy
from drivers.weather.forecast_solar import ForecastSolarClient
from drivers.weather.openmeteo import OpenMeteoClient
from drivers.weather.types import mean_power
from storage import StorageError
from storage.datamanager import DataManager
from storage.records import EventRecord, JsonValue, Severity

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
STEP_S = 900
STATE_KEY = "forecast.weather"
DEFAULT_URLS = {"open_meteo": "https://api.open-meteo.com/v1", "forecast_solar": "https://api.forecast.solar"}
MAX_FORECAST_DAYS = 16  # Open-Meteo's limit
FETCH_WAIT_S = 5.0  # a forecast waits this long for a fetch; a slower one goes on in the background


def _slot(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_S


def _when(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * STEP_S, UTC)


def fingerprint(config: ForecastConfig) -> str:
    """What a kept forecast depends on: another site, array or source makes it worthless."""
    arrays = [a.model_dump() for a in config.arrays]
    return json.dumps([config.weather.source, config.latitude, config.longitude, arrays], sort_keys=True)


class WeatherService:
    def __init__(
        self, config: ForecastConfig, data: DataManager, *, http_policy: RetryPolicy | None = None
    ) -> None:
        self.config = config
        self.data = data
        self._policy = http_policy
        self._task: asyncio.Task[None] | None = None
        self.wait_s = FETCH_WAIT_S
        self._loaded = False
        self._pv: dict[int, float] = {}  # 15-minute slot (epoch / 900) -> W, all arrays
        self._temp: dict[int, float] = {}  # 15-minute slot -> air temperature, degC (Open-Meteo)
        self._fingerprint = ""
        self.fetched_at: datetime | None = None
        self.failed_at: datetime | None = None
        self.last_error = ""

    @property
    def enabled(self) -> bool:
        return self.config.weather.source != "none"

    def status(self, now: datetime) -> str:
        """off | fresh | stale (the last good forecast, the source failing or not asked in time) |
        unavailable (nothing fetched yet)."""
        if not self.enabled:
            return "off"
        if self.fetched_at is None or self._fingerprint != fingerprint(self.config):
            return "unavailable"
        too_old = now - self.fetched_at > timedelta(minutes=2 * self.config.weather.refresh_min)
        return "stale" if self.failed_at is not None or too_old else "fresh"

    def values(self, starts: list[datetime]) -> FloatArray:
        """PV power (W, all arrays) of the 15-minute interval holding each start; NaN where unknown."""
        if self._fingerprint != fingerprint(self.config):
            return np.full(len(starts), np.nan)
        return np.array([self._pv.get(_slot(s), math.nan) for s in starts], dtype=np.float64)

    def temperatures(self, starts: list[datetime]) -> FloatArray:
        """The air temperature (degC) of the 15-minute interval holding each start; NaN where unknown."""
        if self._fingerprint != fingerprint(self.config):
            return np.full(len(starts), np.nan)
        return np.array([self._temp.get(_slot(s), math.nan) for s in starts], dtype=np.float64)

    async def update(self, now: datetime, until: datetime) -> None:
        """Fetch when the kept forecast is due for a refresh (and the source is not resting after a
        failure), waiting at most ``wait_s`` for it: a slow source finishes in the background and
        the next forecast uses what it brought. Never raises for a failing source."""
        if not self.enabled:
            return
        if not self._loaded:
            await self._load()
        task = self._task
        if task is not None and task.done():
            self._task = task = None
        if task is None and self._due(now):
            task = self._task = asyncio.create_task(self._refresh(now, until), name="weather-fetch")
        if task is not None:
            await asyncio.wait({task}, timeout=self.wait_s)

    def _due(self, now: datetime) -> bool:
        weather = self.config.weather
        if self.failed_at is not None and now - self.failed_at < timedelta(minutes=weather.retry_min):
            return False
        current = self._fingerprint == fingerprint(self.config)
        fresh = self.fetched_at is not None and now - self.fetched_at < timedelta(minutes=weather.refresh_min)
        return not (current and fresh)

    async def close(self) -> None:
        """Stop a fetch still under way (the daemon is stopping)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _refresh(self, now: datetime, until: datetime) -> None:
        source = self.config.weather.source
        try:
            fetched, temperature = await self._fetch(now, until)
        except (DriverError, ValueError) as exc:
            await self._failed(now, str(exc))
            return
        except Exception as exc:  # a fetch in the background must report, not vanish
            log.exception("weather forecast (%s) failed unexpectedly", source)
            await self._failed(now, f"{type(exc).__name__}: {exc}")
            return
        if self._fingerprint != fingerprint(self.config):
            self._pv, self._temp = {}, {}
        self._pv.update(fetched)
        self._temp.update(temperature)
        keep_from = _slot(now - timedelta(days=self.config.calibration_days + 1))
        self._pv = {k: v for k, v in sorted(self._pv.items()) if k >= keep_from}
        self._temp = {k: v for k, v in sorted(self._temp.items()) if k >= keep_from}
        self._fingerprint = fingerprint(self.config)
        if self.failed_at is not None:
            log.info("weather forecast (%s) fetched again", source)
        self.fetched_at, self.failed_at, self.last_error = now, None, ""
        await self._save()

    async def _failed(self, now: datetime, error: str) -> None:
        first = self.failed_at is None
        self.failed_at, self.last_error = now, error
        kept = "the last good forecast stays" if self.fetched_at else "no weather forecast yet"
        log.warning("weather forecast (%s) failed: %s; %s", self.config.weather.source, error, kept)
        if first:
            try:
                await self.data.log_event(
                    EventRecord(
                        now,
                        "forecast.weather",
                        f"{error}; {kept}",
                        Severity.WARNING,
                        {"source": self.config.weather.source},
                    )
                )
            except StorageError as exc:
                log.warning("cannot record the weather failure: %s", exc)

    async def _fetch(self, now: datetime, until: datetime) -> tuple[dict[int, float], dict[int, float]]:
        """The PV of every array together, and the air temperature (Open-Meteo's), per interval."""
        weather = self.config.weather
        policy = self._policy or RetryPolicy(
            attempts=3, timeout_s=weather.timeout_s, backoff_s=2.0, max_backoff_s=10.0
        )
        per_array: list[dict[int, float]] = []
        temperature: dict[int, float] = {}
        async with HttpClient(policy) as http:
            for array in self.config.arrays:
                if weather.source == "open_meteo":
                    pv, temperature = await self._open_meteo(http, array, now, until)
                    per_array.append(pv)
                else:
                    per_array.append(await self._forecast_solar(http, array))
        common = set.intersection(*(set(d) for d in per_array))
        if not common:
            raise ValueError(f"{weather.source}: the arrays' forecasts share no 15-minute interval")
        return {k: sum(d[k] for d in per_array) for k in sorted(common)}, temperature

    def _base_url(self) -> str:
        return self.config.weather.base_url or DEFAULT_URLS[self.config.weather.source]

    async def _open_meteo(
        self, http: HttpClient, array: PvArrayConfig, now: datetime, until: datetime
    ) -> tuple[dict[int, float], dict[int, float]]:
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        days = min(MAX_FORECAST_DAYS, max(1, math.ceil((until - midnight) / timedelta(days=1))))
        slots = await OpenMeteoClient(http, base_url=self._base_url()).tilted_irradiance(
            self.config.latitude, self.config.longitude, api_plane(array),
            forecast_days=days, past_days=self.config.calibration_days,
        )  # fmt: skip
        gti = np.array([s.gti_w_m2 for s in slots])
        temperature = np.array([math.nan if s.temperature_c is None else s.temperature_c for s in slots])
        power = array_power_w(array, gti, temperature)
        quarters = [s.end - s.start == timedelta(seconds=STEP_S) for s in slots]
        pv = {_slot(s.start): float(p) for s, p, q in zip(slots, power, quarters, strict=True) if q}
        air = {
            _slot(s.start): float(t)
            for s, t, q in zip(slots, temperature, quarters, strict=True)
            if q and math.isfinite(t)
        }
        return pv, air

    async def _forecast_solar(self, http: HttpClient, array: PvArrayConfig) -> dict[int, float]:
        key = self.config.weather.api_key.get_secret_value() or None
        client = ForecastSolarClient(http, api_key=key, base_url=self._base_url())
        samples = await client.estimate(
            self.config.latitude, self.config.longitude, api_plane(array), array.kwp
        )
        first, last = -(-int(samples[0].at.timestamp()) // STEP_S), int(samples[-1].at.timestamp()) // STEP_S
        result: dict[int, float] = {}
        for slot in range(first, last):
            power = mean_power(samples, _when(slot), _when(slot + 1))
            if power is not None:
                result[slot] = power
        return result

    async def _load(self) -> None:
        self._loaded = True
        try:
            document = await self.data.get_state(STATE_KEY)
        except StorageError as exc:
            log.warning("cannot read the kept weather forecast: %s", exc)
            return
        if document is None:
            return
        try:
            pv, fetched_at, kept_fingerprint = _parse_kept(document)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring the kept weather forecast: unreadable (%s)", exc)
            return
        self._pv, self.fetched_at, self._fingerprint = pv, fetched_at, kept_fingerprint
        self._temp = _kept_temperatures(document)

    async def _save(self) -> None:
        if not self._pv or self.fetched_at is None:
            return
        first, last = min(self._pv), max(self._pv)
        values: list[JsonValue] = [
            None if (v := self._pv.get(k)) is None else round(v, 1) for k in range(first, last + 1)
        ]
        document: dict[str, JsonValue] = {
            "fingerprint": self._fingerprint,
            "fetched_at": self.fetched_at.isoformat(),
            "first_slot": first,
            "pv_w": values,
        }
        if self._temp:
            low = min(self._temp)
            document["temperature_first_slot"] = low
            document["temperature_c"] = [
                None if (t := self._temp.get(k)) is None else round(t, 2)
                for k in range(low, max(self._temp) + 1)
            ]
        try:
            await self.data.put_state(STATE_KEY, document)
        except StorageError as exc:
            log.warning("cannot keep the weather forecast: %s", exc)


def _parse_kept(document: JsonValue) -> tuple[dict[int, float], datetime, str]:
    if not isinstance(document, dict):
        raise TypeError(f"expected an object, got {type(document).__name__}")
    first, values = document["first_slot"], document["pv_w"]
    if not isinstance(first, int) or not isinstance(values, list):
        raise TypeError("first_slot must be an integer and pv_w a list")
    pv = {first + i: float(v) for i, v in enumerate(values) if isinstance(v, int | float)}
    fetched_at = datetime.fromisoformat(str(document["fetched_at"])).astimezone(UTC)
    return pv, fetched_at, str(document["fingerprint"])


def _kept_temperatures(document: JsonValue) -> dict[int, float]:
    """The kept air temperatures (none in a forecast kept before they were)."""
    if not isinstance(document, dict):
        return {}
    first, values = document.get("temperature_first_slot"), document.get("temperature_c")
    if not isinstance(first, int) or not isinstance(values, list):
        return {}
    return {first + i: float(v) for i, v in enumerate(values) if isinstance(v, int | float)}
