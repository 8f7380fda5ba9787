"""PV power from solar geometry or from forecast irradiance, and its calibration on measurements.

Array azimuths in the configuration are compass bearings (0 = north, 90 = east, 180 = south,
270 = west); the weather APIs count from south (0 = south, -90 = east, +90 = west):
:func:`api_plane` converts. Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from controller.config.models import PvArrayConfig
from drivers.weather.types import Plane

FloatArray = npt.NDArray[np.float64]

TEMPERATURE_COEFFICIENT_PER_K = -0.004  # crystalline silicon, relative power per kelvin
CELL_HEATING_K_PER_W_M2 = 0.03  # cell above air temperature per W/m² (NOCT 45 °C: 25 K at 800 W/m²)
CALIBRATION_LIMITS = (0.5, 1.5)  # measured/forecast ratios outside this say "broken", not "biased"
CLEAR_SKY_SCALE_LIMITS = (0.05, 1.2)
DAYLIGHT_SHARE = 0.05  # slots below this share of the model's peak do not count in a ratio


def api_plane(array: PvArrayConfig) -> Plane:
    """The array's orientation in the weather APIs' convention (azimuth 0 = south, -90 = east)."""
    return Plane(tilt_deg=array.tilt_deg, azimuth_deg=array.azimuth_deg - 180.0)


def array_power_w(
    array: PvArrayConfig, gti_w_m2: FloatArray, temperature_c: FloatArray | None = None
) -> FloatArray:
    """AC power (W) of one array from the irradiance on its plane, after losses and cell heating.

    ``temperature_c`` is the air temperature (NaN where unknown: no temperature correction).
    """
    gti = np.clip(np.asarray(gti_w_m2, dtype=np.float64), 0.0, None)
    factor = np.ones_like(gti)
    if temperature_c is not None:
        cell = np.asarray(temperature_c, dtype=np.float64) + CELL_HEATING_K_PER_W_M2 * gti
        factor = np.where(np.isfinite(cell), 1.0 + TEMPERATURE_COEFFICIENT_PER_K * (cell - 25.0), 1.0)
    power: FloatArray = array.kwp * gti * (1.0 - array.losses_pct / 100.0) * factor
    return np.clip(power, 0.0, None)


def clear_sky_pv_w(
    arrays: Sequence[PvArrayConfig], latitude: float, longitude: float, times: Sequence[datetime]
) -> FloatArray:
    """PV power (W) of the arrays under a clear sky at the given instants (interval midpoints)."""
    ts = np.array([t.timestamp() for t in times], dtype=np.float64)
    day_of_year = np.array([t.astimezone(UTC).timetuple().tm_yday for t in times], dtype=np.float64)
    utc_hours = (ts % 86400.0) / 3600.0
    gamma = 2 * math.pi / 365.0 * (day_of_year - 1 + (utc_hours - 12) / 24)
    decl = (
        0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma) - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma)
    )  # fmt: skip
    eot_min = 229.18 * (
        0.000075 + 0.001868 * np.cos(gamma) - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma) - 0.040849 * np.sin(2 * gamma)
    )  # fmt: skip
    solar_time_h = utc_hours + (longitude * 4 + eot_min) / 60.0
    hour_angle = np.radians(15.0 * (solar_time_h - 12.0))
    lat = math.radians(latitude)
    cos_zenith = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    cos_zenith = np.clip(cos_zenith, 0.0, 1.0)
    zenith = np.arccos(cos_zenith)
    # solar azimuth measured from north, clockwise
    sin_az = -np.sin(hour_angle) * np.cos(decl) / np.maximum(np.sin(zenith), 1e-9)
    cos_az = (np.sin(decl) - np.sin(lat) * cos_zenith) / np.maximum(np.cos(lat) * np.sin(zenith), 1e-9)
    azimuth = np.arctan2(sin_az, cos_az)
    # Haurwitz clear-sky global irradiance, split into beam and diffuse (simple fixed fraction)
    ghi = np.where(
        cos_zenith > 0.01, 1098.0 * cos_zenith * np.exp(-0.057 / np.maximum(cos_zenith, 0.01)), 0.0
    )
    dni = np.where(cos_zenith > 0.01, 0.8 * ghi / np.maximum(cos_zenith, 0.01), 0.0)
    dhi = 0.2 * ghi
    total = np.zeros(len(times))
    for array in arrays:
        tilt = math.radians(array.tilt_deg)
        surface_az = math.radians(array.azimuth_deg)
        cos_inc = cos_zenith * math.cos(tilt) + np.sin(zenith) * math.sin(tilt) * np.cos(azimuth - surface_az)
        poa = dni * np.clip(cos_inc, 0.0, None) + dhi * (1 + math.cos(tilt)) / 2
        total += array_power_w(array, poa)
    return total


def energy_ratio(
    measured_w: FloatArray, modelled_w: FloatArray, *, min_energy_wh: float, step_h: float
) -> float | None:
    """Sum of measured over sum of modelled power where both are known and the model sees daylight.

    None when that daylight holds less than ``min_energy_wh`` of modelled energy (too little to tell).
    """
    measured = np.asarray(measured_w, dtype=np.float64)
    modelled = np.asarray(modelled_w, dtype=np.float64)
    known = np.isfinite(measured) & np.isfinite(modelled)
    if not known.any():
        return None
    peak = float(modelled[known].max())
    use = known & (modelled > DAYLIGHT_SHARE * peak)
    modelled_wh = float(modelled[use].sum()) * step_h
    if peak <= 0.0 or modelled_wh < min_energy_wh:
        return None
    return float(np.clip(measured[use], 0.0, None).sum()) * step_h / modelled_wh


def calibration_factor(
    measured_w: FloatArray, forecast_w: FloatArray, *, kwp: float, step_h: float
) -> float | None:
    """Measured over forecast PV energy, clipped to :data:`CALIBRATION_LIMITS`.

    None until the forecast held at least two peak-hours of the installed power (about a dull
    winter day's worth): fewer say too little about a systematic bias.
    """
    ratio = energy_ratio(measured_w, forecast_w, min_energy_wh=2000.0 * kwp, step_h=step_h)
    return None if ratio is None else float(np.clip(ratio, *CALIBRATION_LIMITS))
