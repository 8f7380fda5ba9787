"""Local calendar days as UTC instants: the one helper for every layer (prices, storage, reports)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo


def day_window(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC bounds [start, end) of a local calendar day: 23, 24 or 25 hours long around DST changes."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC)
    return start, end
