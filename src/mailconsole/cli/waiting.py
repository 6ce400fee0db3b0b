"""What a command says on stderr while it waits for a busy store (stop, pause, delete)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..store.errors import StoreBusy
from .common import printable

# How often the same wait is reported again; a new holder is reported at once.
REPEAT = 1.0


class WaitReporter:
    """An `on_wait` callback (store/retry.py): one line at once, then about once a second or on change."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._last_at: float | None = None
        self._last_holder: str | None = None
        self.waited = False

    def __call__(self, busy: StoreBusy, waited: float) -> None:
        now = time.monotonic()
        holder = busy.holder
        if self._last_at is not None and holder == self._last_holder and now - self._last_at < REPEAT:
            return
        self._last_at, self._last_holder, self.waited = now, holder, True
        who = f"locked by {holder}" if holder else "locked by another writer"
        self.say(f"waiting for the store: {who} for {waited:.0f} s; retrying")

    def say(self, line: str) -> None:
        print(f"mailconsole: {printable(line)}", file=self._stream, flush=True)
