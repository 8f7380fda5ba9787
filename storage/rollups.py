"""Bucket statistics of sampled series (numpy): the one aggregation used live, for imports and in queries.

A bucket holds count, sum, min, max, the last value with its time and, for power fields, the energy
of the positive and of the negative part. Energy integrates each sample backwards over the time
since the previous sample, capped at ``max_gap_s`` so that an outage is not bridged by one value.
Buckets merge exactly (sums add, extremes combine, the later ``last`` wins), which is what the
SQLite upsert does when a bucket receives samples over several commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from storage.records import FieldHistory, FloatArray

IntArray = npt.NDArray[np.int64]


def is_power_field(name: str) -> bool:
    return name.endswith("_w")


@dataclass(frozen=True, slots=True, eq=False)
class Buckets:
    start: IntArray  # bucket start, epoch seconds, ascending
    count: IntArray
    total: FloatArray
    low: FloatArray
    high: FloatArray
    last: FloatArray
    last_t: FloatArray
    pos_wh: FloatArray | None  # None for fields that are not power
    neg_wh: FloatArray | None

    def __len__(self) -> int:
        return int(self.start.size)

    def rows(
        self, series: int, source: int
    ) -> list[tuple[int, int, int, int, float, float, float, float, float, float | None, float | None]]:
        """Rows for the rollup tables: (series, bucket, source, n, total, lo, hi, last, last_t, pos, neg)."""
        pos: Sequence[float | None] = self.pos_wh.tolist() if self.pos_wh is not None else [None] * len(self)
        neg: Sequence[float | None] = self.neg_wh.tolist() if self.neg_wh is not None else [None] * len(self)
        return list(
            zip(
                [series] * len(self),
                self.start.tolist(),
                [source] * len(self),
                self.count.tolist(),
                self.total.tolist(),
                self.low.tolist(),
                self.high.tolist(),
                self.last.tolist(),
                self.last_t.tolist(),
                pos,
                neg,
                strict=True,
            )
        )


def aggregate(
    times: FloatArray,
    values: FloatArray,
    width_s: int,
    *,
    energy: bool,
    max_gap_s: float,
    prev_time: float | None = None,
) -> Buckets:
    """Buckets of ``width_s`` seconds over samples (epoch seconds); NaN values are not samples.

    ``prev_time`` is the time of the sample before ``times[0]`` (from an earlier batch), so energy
    continues across batches; without it the first sample integrates over nothing.
    """
    if width_s <= 0:
        raise ValueError(f"bucket width must be > 0 s, got {width_s!r}")
    mask = np.isfinite(values) & np.isfinite(times)
    t = np.asarray(times, dtype=np.float64)[mask]
    v = np.asarray(values, dtype=np.float64)[mask]
    if t.size > 1 and bool(np.any(np.diff(t) < 0)):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    if t.size == 0:
        empty_f = np.empty(0, dtype=np.float64)
        empty_i = np.empty(0, dtype=np.int64)
        return Buckets(
            empty_i,
            empty_i,
            empty_f,
            empty_f,
            empty_f,
            empty_f,
            empty_f,
            empty_f if energy else None,
            empty_f if energy else None,
        )
    bucket = (np.floor(t / width_s) * width_s).astype(np.int64)
    first = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    last_index = np.concatenate((first[1:], [t.size])) - 1
    count = np.diff(np.concatenate((first, [t.size]))).astype(np.int64)
    pos_wh: FloatArray | None = None
    neg_wh: FloatArray | None = None
    if energy:
        before = np.concatenate(([prev_time if prev_time is not None else t[0]], t[:-1]))
        dt = np.clip(t - before, 0.0, max_gap_s)
        wh = v * dt / 3600.0
        pos_wh = np.add.reduceat(np.where(wh > 0, wh, 0.0), first)
        neg_wh = np.add.reduceat(np.where(wh < 0, -wh, 0.0), first)
    return Buckets(
        start=bucket[first],
        count=count,
        total=np.add.reduceat(v, first),
        low=np.minimum.reduceat(v, first),
        high=np.maximum.reduceat(v, first),
        last=v[last_index],
        last_t=t[last_index],
        pos_wh=pos_wh,
        neg_wh=neg_wh,
    )


def empty_field(size: int) -> FieldHistory:
    nan = np.full(size, np.nan)
    return FieldHistory(nan, nan.copy(), nan.copy(), nan.copy(), np.zeros(size), nan.copy(), nan.copy())


def field_history(times: FloatArray, buckets: Buckets) -> FieldHistory:
    """Place ``buckets`` on the time axis ``times`` (which holds every bucket start); NaN elsewhere."""
    out = empty_field(times.size)
    if len(buckets) == 0:
        return out
    index = np.searchsorted(times, buckets.start.astype(np.float64))
    count = buckets.count.astype(np.float64)
    out.mean[index] = buckets.total / count
    out.min[index] = buckets.low
    out.max[index] = buckets.high
    out.last[index] = buckets.last
    out.count[index] = count
    if buckets.pos_wh is not None and buckets.neg_wh is not None:
        out.energy_in_wh[index] = buckets.pos_wh
        out.energy_out_wh[index] = buckets.neg_wh
    return out


def raw_field_history(
    times: FloatArray, sample_times: FloatArray, values: FloatArray, *, energy: bool, max_gap_s: float
) -> FieldHistory:
    """Raw samples of one field on the axis ``times`` (the union of all sample times)."""
    out = empty_field(times.size)
    mask = np.isfinite(values)
    st, sv = sample_times[mask], values[mask]
    if st.size == 0:
        return out
    index = np.searchsorted(times, st)
    for array in (out.mean, out.min, out.max, out.last):
        array[index] = sv
    out.count[index] = 1.0
    if energy:
        dt = np.clip(np.diff(st, prepend=st[0]), 0.0, max_gap_s)
        wh = sv * dt / 3600.0
        out.energy_in_wh[index] = np.where(wh > 0, wh, 0.0)
        out.energy_out_wh[index] = np.where(wh < 0, -wh, 0.0)
    return out
