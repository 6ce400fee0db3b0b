"""The stop key's commit: tried again until the store has it, and reported as it goes.

The screen may say STOPPED only once the stop is saved: before that, mail can
still be claimed and sent. So a press starts one `StopRequest`, a plain thread
that calls the store's one-attempt commit again and again, as long as it takes:

    press ──► attempt ──► applied ──► nudge the engine ──► dot fence ──► done
                 │  ▲
     StoreBusy   │  │  at once (the lock is usually free again within ms)
     any other   └──┘  every ERROR_PAUSE (a read-only file, a full disk: until fixed)
                 │
                 └──► once, after the first failed attempt: `announce` (the stop
                      intent, which engines on this host honour before the store has it)

Every change of state goes to `report`, on the requesting thread's behalf; the
console shows the newest one until the next arrives. No limit on attempts: an
operator who pressed stop must never have to notice that it did not take and
press again.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..store.errors import StoreBusy, StoreError

# Between two attempts while another writer holds the lock. Each attempt already
# waits up to the store's busy timeout for the lock, trying every 0.5 ms.
BUSY_PAUSE = 0.01
# Between two attempts after any other failure: the cause needs someone to fix it.
ERROR_PAUSE = 1.0

log = logging.getLogger(__name__)

Phase = Literal["requested", "busy", "failed", "applied"]


@dataclass(frozen=True)
class StopProgress:
    """Where one stop request stands.

    requested: the first attempt is under way; busy: another writer held the
    store's write lock (`detail` names it when known); failed: an attempt failed
    otherwise (`detail` is the error); applied: the stop is saved.
    """

    phase: Phase
    detail: str = ""
    attempts: int = 0

    @property
    def applied(self) -> bool:
        return self.phase == "applied"

    def why_not(self) -> str:
        """Why the stop is not applied yet, in a few words for the banner."""
        if self.phase == "busy":
            return f"store busy: {self.detail or 'another process holds the write lock'}"
        if self.phase == "failed":
            return self.detail
        return "waiting for the store"


def busy_detail(exc: StoreBusy) -> str:
    return exc.holder or "another process holds the write lock"


class StopRequest:
    """One press of the stop key, followed through until the stop is saved (or `cancel`).

    `commit` is one attempt (`accounts.commit_stop`); `after_commit` runs once it
    succeeded (the nudge to the engine inside the console); `fence` then waits
    for dots allowed before the commit (`dot_fence.wait_for_allowed_dots`).
    `report` receives each StopProgress from the request's thread, and `done`
    is called once the fence is passed after a successful commit.
    """

    def __init__(
        self,
        commit: Callable[[], object],
        *,
        after_commit: Callable[[], None],
        fence: Callable[[], None],
        report: Callable[[StopProgress], None],
        done: Callable[[], None] = lambda: None,
        announce: Callable[[], None] = lambda: None,
        busy_pause: float = BUSY_PAUSE,
        error_pause: float = ERROR_PAUSE,
    ) -> None:
        self._commit = commit
        self._after_commit = after_commit
        self._fence = fence
        self._report = report
        self._done = done
        self._announce = announce
        self._busy_pause = busy_pause
        self._error_pause = error_pause
        self._cancelled = threading.Event()
        self.first_attempt = threading.Event()  # set when the first attempt has returned or raised
        self.applied = threading.Event()
        self.fenced = threading.Event()
        self.progress = StopProgress("requested")
        self._started = 0.0
        self.committed_after: float | None = None  # seconds from start() to the commit
        # A plain thread, not a Textual worker: a worker starts only once the key's
        # handler returns and the event loop turns, and every millisecond counts.
        self._thread = threading.Thread(target=self._run, name="stop-commit", daemon=True)

    def start(self) -> None:
        self._started = time.perf_counter()
        self._thread.start()

    def cancel(self) -> None:
        """Stop trying (the console is closing); an attempt under way still finishes."""
        self._cancelled.set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _set(self, progress: StopProgress) -> None:
        self.progress = progress
        self._quietly(self._report, progress)

    @staticmethod
    def _quietly(fn: Callable[..., None], *args: object) -> None:
        """Run a callback of the screen's: whatever it raises, the stop goes on being tried.

        The callbacks draw (through call_from_thread, which re-raises on this thread);
        a drawing error once ended this thread and with it the retries of a stop
        that was not saved yet.
        """
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - logged; `progress` still holds the state
            log.exception("the stop's %s failed; the stop itself goes on", getattr(fn, "__name__", "callback"))

    def _announce_once(self) -> None:
        if self._announced:
            return
        self._announced = True
        try:
            self._announce()
        except Exception:  # noqa: BLE001 - the intent is a head start; the retries still apply the stop
            pass

    def _run(self) -> None:
        attempts = 0
        self._announced = False
        while not self._cancelled.is_set():
            attempts += 1
            try:
                self._commit()
            except StoreBusy as exc:
                self.first_attempt.set()
                self._set(StopProgress("busy", busy_detail(exc), attempts))
                self._announce_once()
                self._cancelled.wait(self._busy_pause)
                continue
            except Exception as exc:  # noqa: BLE001 - whatever failed, the stop must be tried again
                self.first_attempt.set()
                detail = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
                self._set(StopProgress("failed", detail, attempts))
                self._announce_once()
                self._cancelled.wait(self._error_pause)
                continue
            self.committed_after = time.perf_counter() - self._started
            self.applied.set()
            self.first_attempt.set()
            self._set(StopProgress("applied", "", attempts))
            self._quietly(self._after_commit)
            break
        # As `accounts.stop` does whatever its commit did: no dot allowed before this
        # moment is still being written once the fence is passed.
        try:
            self._fence()
        except OSError:
            pass  # no fence file to lock (e.g. its directory is read-only): the gate alone applies
        self.fenced.set()
        if self.applied.is_set():
            self._quietly(self._done)


def hand_over(store_url: str, account: str, reason: str) -> int | None:
    """Give a stop this console could not save to a `mailconsole stop` of its own; its pid.

    The console is closing (the operator quit, or the terminal went away) while
    the store is still busy. Dropping the request would leave the account
    sending although the operator pressed stop, so a detached process takes it
    over: it waits for the store as long as it takes, keeps the stop intent, and
    commits the stop. The store URL goes through the environment, not the
    command line, so a password in it is not shown by `ps`.
    """
    env = {**os.environ, "MAILCONSOLE_DB": store_url}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailconsole", "--account", account, "stop", "--reason", reason],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives this console and its terminal's SIGHUP
        )
    except OSError:
        return None
    return proc.pid
