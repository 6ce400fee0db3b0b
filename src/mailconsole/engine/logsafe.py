"""Log lines that a terminal shows as written: outside text cannot act on it.

Server replies, mailing names and failure reasons reach the `serve` log from
outside; a control character in them could clear the screen, retitle the window
or fake a log line, and a bidirectional override could make a line read
differently from what it says. Each is shown as an escape (`\\x1b`, `\\u202e`).
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls (newline and tab too: one record, one line), DEL, the Unicode
# line and paragraph separators, and the bidirectional marks, embeddings,
# overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: object) -> str:
    """`text` with every character that a terminal would act on shown as an escape."""
    return _UNSAFE.sub(_escaped, str(text))


class EscapingFormatter(logging.Formatter):
    """A formatter whose messages are escaped; a traceback keeps its lines, each escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return "\n".join(escape(line) for line in super().formatException(ei).split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(escape(line) for line in stack_info.split("\n"))
