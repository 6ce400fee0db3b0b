"""Times as the program takes and shows them: POSIX seconds, shown in UTC.

The range is what every display can show: from 1970-01-01 to 9999-12-30 UTC.
`datetime` stops at the year 9999, so a time an hour past its end in UTC (or one
a zone offset pushes past it) cannot be formatted; one accepted anyway would make
every listing that shows it fail. A time outside the range is refused when it is
typed, and shown as "(invalid time …)" if one is already stored. Neutral: imports
nothing from the package, for the CLI and the console alike.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc).timestamp()
EXAMPLE = "2026-12-01T09:00:00+00:00"


def in_range(ts: float) -> bool:
    return math.isfinite(ts) and EARLIEST <= ts <= LATEST


def parse_iso(text: str) -> float:
    """An ISO 8601 time within the range; a time without zone is UTC. ValueError says why not."""
    value = text.strip()
    if not value:
        raise ValueError(f"an empty time; give an ISO 8601 time (e.g. {EXAMPLE})")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. {EXAMPLE})") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        ts = dt.timestamp()
    except (OverflowError, ValueError):
        ts = math.nan
    if not in_range(ts):
        raise ValueError(f"{text!r} is outside the times this program can show (1970-01-01 to 9999-12-30 UTC)")
    return ts


def format_utc(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """`ts` in UTC; "-" for None; a value outside the range (stored by an older release) is
    shown as such instead of failing the whole listing it is in."""
    if ts is None:
        return "-"
    try:
        if in_range(float(ts)):
            return datetime.fromtimestamp(ts, timezone.utc).strftime(fmt)
    except (TypeError, ValueError, OverflowError, OSError):
        pass
    return f"(invalid time {ts!r})"


__all__ = ["EARLIEST", "LATEST", "in_range", "parse_iso", "format_utc"]
