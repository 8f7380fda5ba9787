"""Open-Meteo forecast API: global tilted irradiance for one PV plane, 15-minute steps.

``GET https://api.open-meteo.com/v1/forecast?latitude=..&longitude=..&tilt=..&azimuth=..
&minutely_15=global_tilted_irradiance,temperature_2m,cloud_cover&forecast_days=2&timezone=GMT``
answers ``{"utc_offset_seconds": 0, "minutely_15_units": {...}, "minutely_15": {"time": [...],
"<variable>": [...]}}`` with local wall times without offset (UTC when timezone=GMT). Radiation
values are means over the PRECEDING step, so the value at T covers [T - 15 min, T); temperature
and cloud cover are the values at T. Missing values are null. Free for non-commercial use.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from drivers.http import HttpClient, HttpError
from drivers.weather.types import IrradianceSlot, Plane, WeatherError

STEP = timedelta(minutes=15)
VARIABLES = ("global_tilted_irradiance", "temperature_2m", "cloud_cover")


def parse_series(
    body: str, variables: tuple[str, ...], *, block: str = "minutely_15", where: str
) -> tuple[list[datetime], dict[str, list[float | None]]]:
    """Times (UTC) and the named variables' values from a forecast answer."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise WeatherError(f"{where}: response is not valid JSON ({exc.msg}): {body[:80]!r}") from None
    if not isinstance(document, dict):
        raise WeatherError(f"{where}: expected a JSON object, got {type(document).__name__}")
    if document.get("error"):
        raise WeatherError(f"{where}: API error: {document.get('reason', document)!r}")
    offset = document.get("utc_offset_seconds", 0)
    if not isinstance(offset, int):
        raise WeatherError(f"{where}: utc_offset_seconds must be an integer, got {offset!r}")
    series = document.get(block)
    if not isinstance(series, dict):
        raise WeatherError(f"{where}: {block!r} is missing (keys: {', '.join(document)})")
    raw_times = series.get("time")
    if not isinstance(raw_times, list) or not raw_times:
        raise WeatherError(f"{where}: {block}.time must be a non-empty list")
    times: list[datetime] = []
    for index, text in enumerate(raw_times):
        try:
            local = datetime.fromisoformat(text)
        except (TypeError, ValueError):
            raise WeatherError(f"{where}: {block}.time[{index}] is not an ISO 8601 time: {text!r}") from None
        if local.tzinfo is not None:
            raise WeatherError(
                f"{where}: {block}.time[{index}] has an offset; expected local wall time: {text!r}"
            )
        times.append((local - timedelta(seconds=offset)).replace(tzinfo=UTC))
    values: dict[str, list[float | None]] = {}
    for name in variables:
        column = series.get(name)
        if not isinstance(column, list) or len(column) != len(times):
            raise WeatherError(f"{where}: {block}.{name} must be a list of {len(times)} values")
        values[name] = [_number(value, f"{block}.{name}[{i}]", where) for i, value in enumerate(column)]
    return times, values


def _number(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WeatherError(f"{where}: {name} must be a number or null, got {value!r}")
    return float(value)


def irradiance_slots(
    times: list[datetime], values: dict[str, list[float | None]], *, where: str
) -> tuple[IrradianceSlot, ...]:
    """15-minute slots ending at each time; times without an irradiance value are left out."""
    slots: list[IrradianceSlot] = []
    for index, end in enumerate(times):
        if index and end - times[index - 1] != STEP:
            raise WeatherError(
                f"{where}: time[{index}] {end:%Y-%m-%dT%H:%MZ} does not follow 15 minutes after the previous"
            )
        gti = values["global_tilted_irradiance"][index]
        if gti is None:
            continue
        if not 0.0 <= gti <= 1500.0:
            raise WeatherError(f"{where}: global_tilted_irradiance[{index}] = {gti} W/m² is outside 0..1500")
        slots.append(
            IrradianceSlot(
                start=end - STEP,
                end=end,
                gti_w_m2=gti,
                temperature_c=values["temperature_2m"][index],
                cloud_cover_pct=values["cloud_cover"][index],
            )
        )
    if not slots:
        raise WeatherError(f"{where}: no irradiance values in the answer")
    return tuple(slots)


class OpenMeteoClient:
    def __init__(self, http: HttpClient, *, base_url: str = "https://api.open-meteo.com/v1") -> None:
        self._http = http
        self.base_url = base_url

    async def tilted_irradiance(
        self, latitude: float, longitude: float, plane: Plane, *, forecast_days: int = 2, past_days: int = 0
    ) -> tuple[IrradianceSlot, ...]:
        if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
            raise ValueError(f"latitude/longitude out of range: {latitude}, {longitude}")
        params = {
            "latitude": f"{latitude:.4f}",
            "longitude": f"{longitude:.4f}",
            "tilt": f"{plane.tilt_deg:g}",
            "azimuth": f"{plane.azimuth_deg:g}",
            "minutely_15": ",".join(VARIABLES),
            "forecast_days": str(forecast_days),
            "past_days": str(past_days),
            "timezone": "GMT",
        }
        where = f"open-meteo tilt {plane.tilt_deg:g} azimuth {plane.azimuth_deg:g}"
        try:
            response = await self._http.get(f"{self.base_url}/forecast", params=params)
        except HttpError as exc:
            raise WeatherError(f"{where}: {exc}") from exc
        times, values = parse_series(response.text, VARIABLES, where=where)
        return irradiance_slots(times, values, where=where)
