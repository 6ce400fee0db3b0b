"""Operator actions that must happen: try again on StoreBusy until applied.

A stop, a pause or a delete is never refused because another writer holds the
lock: the operator pressed it, so it waits for the lock, for as long as it
takes, and says why meanwhile (on_wait). Each try polls the lock for `slice`
seconds (Store.write's patience, every LOCK_POLL), so a retry loses at most
the time on_wait takes, never a backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import StoreBusy

T = TypeVar("T")
# Called after each failed try with the error (its .holder names the writer when
# known) and the seconds waited so far; it may raise (KeyboardInterrupt) to give up.
OnWait = Callable[[StoreBusy, float], None]
RETRY_SLICE = 0.25
# Longer than an engine's transaction (a few ms), short enough to tell the operator at once.
FIRST_TRY = 0.005


def until_applied(
    attempt: Callable[[float], T],
    on_wait: OnWait | None = None,
    *,
    slice: float = RETRY_SLICE,
    started: float | None = None,
    first: float = FIRST_TRY,
) -> T:
    """attempt(patience) until it returns; StoreBusy is retried without limit.

    Any other error (not found, refused, a corrupt store) ends it: only a busy
    store is a reason to wait. The first try is short (`first`), so that a wait
    is reported at once; `started` (time.monotonic()) counts earlier waits.
    """
    t0 = time.monotonic() if started is None else started
    patience = first
    while True:
        try:
            return attempt(patience)
        except StoreBusy as busy:
            if on_wait is not None:
                on_wait(busy, time.monotonic() - t0)
        patience = slice
