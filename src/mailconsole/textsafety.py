"""Text that reaches a terminal: shown as the characters it is made of, never obeyed.

Names, stop reasons, subjects, audit details, SMTP replies and error messages are
data someone else typed. Two kinds of character in them act on a terminal
instead of showing:

- control characters (C0, DEL, C1): ESC starts sequences that clear the screen,
  retitle the window or fake a line; CR overwrites a line; U+009B is CSI on
  some terminals;
- bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the
  invisible direction marks (U+200E, U+200F, U+061C): they reorder what
  follows, so "stopped by bob" can read as something else ("Trojan Source",
  CVE-2021-42574);
- the Unicode line and paragraph separators (U+2028, U+2029), which break a
  line in some terminals, so one record could pass for two.

`escape_terminal` writes each of them out as ``\\xNN`` or ``\\uNNNN``. This
module imports nothing from the rest of the package, so the CLI, the console
and the engine's log can all use it.
"""

from __future__ import annotations

import re

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
SEPARATORS = "\u2028\u2029"
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f" + BIDI + SEPARATORS + "]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_terminal(text: object, keep: str = "") -> str:
    """`text` with its control and bidi characters (except those in `keep`) written out.

    keep="\\t\\n" suits a template body shown as it is; everything a single line
    holds (a name, a reason, an error) is escaped whole, so it stays one line.
    """
    value = str(text)
    if not _UNSAFE.search(value):
        return value  # the common case: no copy
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _shown(m), value)


def has_unsafe(text: str) -> bool:
    """Whether `text` holds a character `escape_terminal` would write out."""
    return _UNSAFE.search(text) is not None


__all__ = ["BIDI", "escape_terminal", "has_unsafe"]
