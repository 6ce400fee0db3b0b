"""Log lines that a terminal shows as written: outside text cannot act on it.

Server replies, mailing names and failure reasons reach the `serve` log from
outside; a control character in them could clear the screen, retitle the window
or fake a log line, and a bidirectional override could make a line read
differently from what it says. Each is shown as an escape (`\\x1b`, `\\u202e`).
"""

from __future__ import annotations

import logging

from ..textsafety import escape_terminal


def escape(text: object) -> str:
    """`text` with every character that a terminal would act on shown as an escape.

    The same rules as the CLI and the console (textsafety); newlines and tabs are
    escaped too: one record, one line.
    """
    return escape_terminal(text)


class EscapingFormatter(logging.Formatter):
    """A formatter whose messages are escaped; a traceback keeps its lines, each escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return "\n".join(escape(line) for line in super().formatException(ei).split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(escape(line) for line in stack_info.split("\n"))
