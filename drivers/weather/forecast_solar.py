"""Forecast.Solar: PV power estimates for one plane (public API, or personal with a key).

``GET https://api.forecast.solar[/{key}]/estimate/{lat}/{lon}/{declination}/{azimuth}/{kwp}``
answers ``{"result": {"watts": {time: W}, "watt_hours_period": .., "watt_hours": ..,
"watt_hours_day": ..}, "message": {"code": 0, "info": {"timezone": ..}, "ratelimit": ..}}``.
Times carry an offset, or are local wall times of ``message.info.timezone``. ``watts`` is the
power at that instant, with 0 at sunrise and sunset. HTTP 429 = rate limit (12 calls an hour on
the public API): not retried, reported with the time it lifts.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.http import HttpClient, HttpError
from drivers.weather.types import Plane, PvPowerSample, WeatherError


def _message(document: dict[str, Any]) -> dict[str, Any]:
    message = document.get("message")
    return message if isinstance(message, dict) else {}


def parse_estimate(body: str, *, where: str) -> tuple[PvPowerSample, ...]:
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise WeatherError(f"{where}: response is not valid JSON ({exc.msg}): {body[:80]!r}") from None
    if not isinstance(document, dict):
        raise WeatherError(f"{where}: expected a JSON object, got {type(document).__name__}")
    message = _message(document)
    if message.get("code", 0) != 0:
        retry_at = (message.get("ratelimit") or {}).get("retry-at")
        suffix = f"; retry at {retry_at}" if retry_at else ""
        raise WeatherError(f"{where}: API error {message.get('code')}: {message.get('text')!r}{suffix}")
    result = document.get("result")
    watts = result.get("watts") if isinstance(result, dict) else None
    if not isinstance(watts, dict) or not watts:
        raise WeatherError(f"{where}: result.watts is missing or empty")
    zone_name = (message.get("info") or {}).get("timezone")
    zone: ZoneInfo | None = None
    if isinstance(zone_name, str):
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise WeatherError(f"{where}: unknown message.info.timezone {zone_name!r}") from None
    samples: list[PvPowerSample] = []
    for key, value in watts.items():
        try:
            instant = datetime.fromisoformat(key)
        except ValueError:
            raise WeatherError(f"{where}: result.watts key is not a time: {key!r}") from None
        if instant.tzinfo is None:
            if zone is None:
                raise WeatherError(
                    f"{where}: time {key!r} has no offset and message.info.timezone is missing"
                )
            instant = instant.replace(tzinfo=zone)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise WeatherError(f"{where}: result.watts[{key!r}] must be a number >= 0, got {value!r}")
        samples.append(PvPowerSample(instant.astimezone(UTC), float(value)))
    samples.sort(key=lambda sample: sample.at)
    for earlier, later in itertools.pairwise(samples):
        if earlier.at == later.at:
            raise WeatherError(f"{where}: two values for {earlier.at:%Y-%m-%dT%H:%M:%SZ}")
    return tuple(samples)


class ForecastSolarClient:
    def __init__(
        self, http: HttpClient, *, api_key: str | None = None, base_url: str = "https://api.forecast.solar"
    ) -> None:
        self._http = http
        self._api_key = api_key
        self.base_url = base_url

    async def estimate(
        self, latitude: float, longitude: float, plane: Plane, kwp: float
    ) -> tuple[PvPowerSample, ...]:
        if not 0.0 < kwp <= 1000.0:
            raise ValueError(f"kwp must be within 0..1000, got {kwp!r}")
        key = f"/{self._api_key}" if self._api_key else ""
        url = (
            f"{self.base_url}{key}/estimate/{latitude:.4f}/{longitude:.4f}/"
            f"{plane.tilt_deg:g}/{plane.azimuth_deg:g}/{kwp:g}"
        )
        where = f"forecast.solar tilt {plane.tilt_deg:g} azimuth {plane.azimuth_deg:g}"
        try:
            response = await self._http.get(url, ok_statuses=frozenset({200, 429}))
        except HttpError as exc:
            shown = str(exc).replace(self._api_key, "***") if self._api_key else str(exc)
            raise WeatherError(f"{where}: {shown}") from exc
        return parse_estimate(response.text, where=where)
