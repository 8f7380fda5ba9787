"""Weather and PV-forecast sources: Open-Meteo tilted irradiance, Forecast.Solar estimates."""

from drivers.weather.types import IrradianceSlot, Plane, PvPowerSample, WeatherError, mean_power

__all__ = ["IrradianceSlot", "Plane", "PvPowerSample", "WeatherError", "mean_power"]
