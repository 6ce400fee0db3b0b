"""How numbers, times and operator data are shown.

Every piece of data (names, reasons, subjects) becomes a `rich.text.Text`, never
a markup string: a mailing called "[red]x" or one carrying terminal escapes must
show as the characters it is made of.
"""

from __future__ import annotations

from rich.text import Text

from ..textsafety import escape_terminal
from ..times import format_utc


def visible(text: str, keep: str = "") -> str:
    """`text` with every character a terminal would obey written out (\\x1b, \\u202e).

    The console's one escaping function for operator data (the CLI and the engine's
    log use the same rules); `keep` names characters let through (the body editor
    keeps newlines and tabs).
    """
    return escape_terminal(text, keep)


def plain(value: object, style: str = "") -> Text:
    """Data as literal text; control characters are made visible, not obeyed."""
    return Text(visible(str(value)), style=style, no_wrap=True, overflow="ellipsis")


def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def number(n: int | None, style: str = "") -> Text:
    """A right-aligned count for table cells."""
    return Text(count(n), style=style, justify="right")


def rate(per_second: float) -> str:
    if per_second >= 100:
        return f"{per_second:,.0f}"
    if per_second >= 0.05:
        return f"{per_second:.1f}"
    return "0"


def clock_time(ts: float | None, zone: bool = True) -> str:
    return format_utc(ts, "%Y-%m-%d %H:%M:%S" + (" UTC" if zone else ""))


def short_time(ts: float | None) -> str:
    """Time of day only: for one-line banners where the date is rarely the question."""
    return format_utc(ts, "%H:%M:%S UTC")


def duration(seconds: float) -> str:
    """Compact and coarse, like an operator says it: 45s, 3m 20s, 2h 05m, 3d 4h."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def ago(ts: float | None, now: float) -> str:
    return "-" if ts is None else f"{duration(now - ts)} ago"


def countdown(ts: float, now: float) -> str:
    return f"in {duration(ts - now)}" if ts > now else "due now"


def eta(queued: int, per_second: float) -> str:
    if queued == 0:
        return "queue empty"
    if per_second < 0.05:
        return "no progress"
    return duration(queued / per_second)
