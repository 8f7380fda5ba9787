"""The forecast-error table's quantiles (controller.forecast.errors)."""

from __future__ import annotations

import numpy as np

from controller.forecast import errors


def test_sorted_quantiles_are_numpys_to_the_last_bit() -> None:
    rng = np.random.default_rng(5)
    runs = [
        np.sort(np.round(rng.normal(0, 400, n)) * (rng.random(n) < 0.7) + 0.0) for n in (5, 6, 17, 96, 401)
    ]
    values = np.concatenate(runs)
    count = np.array([r.size for r in runs])
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    for k in (1, 2, 7, 10):
        for levels in ((np.arange(k) + 0.5) / k, np.arange(1, k) / k):
            got = errors._sorted_quantiles(values, first, count, levels)
            expected = np.array([np.quantile(r, levels) for r in runs]).reshape(got.shape)
            np.testing.assert_array_equal(got, expected)
