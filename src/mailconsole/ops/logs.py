"""The log of `serve` and `relay-agent`: text for a terminal, or one JSON object a line.

`--log-format json` is for log collectors (journald's JSON export, Loki, Fluent Bit):
each record is one line holding time, level, logger, message and fields (whatever
the call passed as `extra=`), and a traceback under "exception". JSON escapes every
control character, and `ensure_ascii` every non-ASCII one, so outside text in a
message (a server's reply, a mailing's name) can neither break the line nor act on
a terminal that shows it; the text format escapes it as engine/logsafe.py says.
A small Formatter rather than a library: the whole format is the dict below.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from ..engine.logsafe import EscapingFormatter

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

# What every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "fields": {k: v for k, v in vars(record).items() if k not in _STANDARD},
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


def setup(level: int, log_format: str = "text") -> None:
    """The root logger writes to stderr in `log_format` (FORMATS) at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else EscapingFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
