"""Operation timings: statistics over the last ``window`` samples, counts and errors over all."""

from __future__ import annotations

import pytest

from storage.metrics import Timings


def test_summary_covers_only_the_last_window_of_samples() -> None:
    timings = Timings(window=4)
    for ms in (100.0, 1.0, 2.0, 3.0, 4.0, 5.0):  # the 100 ms and the 1 ms fall out of the window
        timings.add("query", ms / 1000.0)
    summary = timings.summary()["query"]
    assert summary["count"] == 6.0
    assert summary["max_ms"] == 5.0
    assert summary["median_ms"] == 3.5


def test_a_partly_filled_window_counts_only_what_was_added() -> None:
    timings = Timings(window=1024)
    timings.add("commit", 0.002)
    timings.add("commit", 0.004)
    summary = timings.summary()["commit"]
    assert summary["count"] == 2.0
    assert summary["median_ms"] == pytest.approx(3.0)
    assert summary["max_ms"] == pytest.approx(4.0)


def test_a_failing_operation_is_timed_and_counted_as_an_error() -> None:
    timings = Timings()
    with pytest.raises(RuntimeError), timings.measure("write"):
        raise RuntimeError("disk full")
    summary = timings.summary()["write"]
    assert summary["count"] == 1.0
    assert summary["errors"] == 1.0


def test_window_must_hold_a_sample() -> None:
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        Timings(window=0)
