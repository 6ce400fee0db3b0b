"""An app instance for Textual's dev tools, without an engine behind it.

    textual console                                   # in one terminal: logs and print()
    MAILCONSOLE_DB=demo.db textual run --dev mailconsole.console.dev:app

`--dev` also reloads app.tcss live on save.
"""

from __future__ import annotations

import os

from ..store import Store
from .app import MailConsole

app = MailConsole(Store(os.environ.get("MAILCONSOLE_DB"), create=False), read_only=bool(os.environ.get("MAILCONSOLE_READ_ONLY")))
