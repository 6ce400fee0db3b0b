"""How numbers, times and operator data are shown.

Every piece of data (names, reasons, subjects) becomes a `rich.text.Text`, never
a markup string: a mailing called "[red]x" or one carrying terminal escapes must
show as the characters it is made of.
"""

from __future__ import annotations

from rich.text import Text

from ..times import format_utc


def visible(text: str, keep: str = "") -> str:
    """Control characters (except those in `keep`) written out as \\xNN, so a terminal never obeys them.

    C1 controls (0x80-0x9f) too: some terminals obey U+009B as CSI, like ESC [.
    """
    if not any(ord(ch) < 32 or 127 <= ord(ch) <= 159 for ch in text):
        return text
    return "".join(
        ch if 32 <= ord(ch) < 127 or ord(ch) > 159 or ch in keep else f"\\x{ord(ch):02x}" for ch in text
    )


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
