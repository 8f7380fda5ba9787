"""What-if variants and their self-use replay.

A variant is a battery size and power (0 kWh: none), a PV scale (the recorded PV profile times a
factor) and a tariff (:mod:`controller.sim.tariffs`). Self-use is replayed for all variants at
once, vectorised over the variants (one pass over time), with exactly the arithmetic of
:func:`controller.physics.step` (the tests hold the two equal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams
from controller.sim.tariffs import RECORDED, VariantTariff

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Variant:
    capacity_kwh: float  # 0: no battery
    power_w: float | None = None  # charge and discharge limit; None: the base battery's
    pv_scale: float = 1.0
    tariff: VariantTariff = RECORDED

    def __post_init__(self) -> None:
        for name in ("capacity_kwh", "pv_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"variant {name} must be >= 0, got {value!r}")
        if self.power_w is not None and not (math.isfinite(self.power_w) and self.power_w > 0):
            raise ValueError(f"variant power_w must be > 0, got {self.power_w!r}")

    def battery(self, base: BatteryParams) -> BatteryParams | None:
        if self.capacity_kwh == 0:
            return None
        power = {"max_charge_w": self.power_w, "max_discharge_w": self.power_w} if self.power_w else {}
        return replace(base, capacity_kwh=self.capacity_kwh, **power)

    def label(self, base: BatteryParams) -> str:
        battery = self.battery(base)
        text = (
            "no battery"
            if battery is None
            else (f"{battery.capacity_kwh:g} kWh {battery.max_discharge_w / 1000:g} kW")
        )
        if self.pv_scale != 1.0:
            text += f", PV x{self.pv_scale:g}"
        if self.tariff != RECORDED:
            text += f", tariff {self.tariff.text}"
        return text


@dataclass(frozen=True)
class Flows:
    """Per interval (rows) and variant (columns), W: AC power into and out of the battery, grid (+import)."""

    charge_w: FloatArray
    discharge_w: FloatArray
    grid_w: FloatArray


def self_use_flows(
    batteries: Sequence[BatteryParams | None],
    pv_w: FloatArray,
    load_w: FloatArray,
    dt_h: float,
    initial_soc_pct: float,
) -> Flows:
    """Self-use replayed for every battery at once; ``pv_w`` is (n,) or (n, variants)."""
    n, m = load_w.size, len(batteries)
    pv = np.broadcast_to(pv_w.reshape(n, -1), (n, m))
    real = [b or BatteryParams(max_charge_w=0.0, max_discharge_w=0.0) for b in batteries]
    col = {
        name: np.array([getattr(b, name) for b in real])
        for name in (
            "capacity_kwh",
            "max_charge_w",
            "max_discharge_w",
            "charge_efficiency",
            "discharge_efficiency",
        )
    }
    e_min = np.array([b.e_min_kwh for b in real])
    e_max = np.array([b.e_max_kwh for b in real])
    net = load_w[:, None] - np.maximum(pv, 0.0)
    to_kwh = dt_h / 1000.0
    want_out = np.minimum(np.maximum(net, 0.0), col["max_discharge_w"]) * to_kwh / col["discharge_efficiency"]
    surplus_w = np.maximum(-net, 0.0)
    tapered = [b for b in real if b.taper_start_soc_pct is not None]
    want_in = np.minimum(surplus_w, col["max_charge_w"]) * to_kwh * col["charge_efficiency"]
    e = np.array([b.energy_kwh(initial_soc_pct) for b in real])
    stored_in, stored_out = np.empty((n, m)), np.empty((n, m))
    room_in, room_out = np.empty(m), np.empty(m)
    for t in range(n):
        if tapered:
            limit = np.array([b.charge_limit_w(b.soc_pct(float(x))) for b, x in zip(real, e, strict=True)])
            want_in[t] = np.minimum(surplus_w[t], limit) * to_kwh * col["charge_efficiency"]
        np.subtract(e_max, e, out=room_in)
        np.maximum(room_in, 0.0, out=room_in)
        np.minimum(want_in[t], room_in, out=stored_in[t])
        np.subtract(e, e_min, out=room_out)
        np.maximum(room_out, 0.0, out=room_out)
        np.minimum(want_out[t], room_out, out=stored_out[t])
        e += stored_in[t]
        e -= stored_out[t]
    charge = stored_in / col["charge_efficiency"] / to_kwh
    discharge = stored_out * col["discharge_efficiency"] / to_kwh
    return Flows(charge, discharge, net + charge - discharge)
