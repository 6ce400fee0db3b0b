"""A console's shutdown is bounded, whatever the UI library does once its terminal is gone.

A console whose terminal was killed (an SSH drop, a killed tmux session) once
stopped its engine correctly and then hung for good inside Textual's own
shutdown, holding the store open; SIGTERM did nothing, because asyncio's signal
handlers run on the event loop, and the loop's thread was the one stuck.

So a real session arms a `ShutdownWatchdog` before the app runs. When shutdown
begins, for whatever reason, its thread waits for the engine inside the console
to have returned its claimed messages to the queue (or `claims_timeout`), gives
the ordinary exit a short `grace`, and then ends the process with `os._exit`:

    begin (quit · SIGHUP · SIGTERM · output error) ──► claims returned ──► grace ──► os._exit
                                  └───── or claims_timeout ─────┘

`begin` may be called from a signal handler while the main thread is stuck
anywhere, even holding a lock: it only writes one byte to a pipe (no lock, no
allocation that can block), and the watchdog's own thread does the rest.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

# After the claims are back, how long the ordinary exit may still take (restoring
# the terminal, closing the store) before the process is ended: a few seconds.
GRACE = 3.0


class ShutdownWatchdog:
    """Ends the process at most `claims_timeout + grace` seconds after `begin`."""

    def __init__(
        self,
        claims_timeout: float,
        grace: float = GRACE,
        *,
        exit: Callable[[int], object] = os._exit,
    ) -> None:
        self.claims_timeout = claims_timeout
        self.grace = grace
        self._exit = exit
        self._claims = threading.Event()
        self._read, self._write = os.pipe()
        self.begun = threading.Event()
        self.reason = ""
        self._thread = threading.Thread(target=self._run, name="shutdown-watchdog", daemon=True)

    def arm(self) -> None:
        """Start the watchdog's thread; it sleeps until `begin`."""
        self._thread.start()

    def begin(self, code: int = 0, reason: str = "") -> None:
        """Shutdown has begun; the process exits with `code` if it does not end by itself.

        Safe from a signal handler and from any thread; only the first call counts.
        """
        if not self.reason:
            self.reason = reason or "shutdown"
        try:
            os.write(self._write, bytes([code & 0xFF]))
        except OSError:
            pass  # the pipe is full: begun already

    def claims_returned(self) -> None:
        """The engine inside the console (if any) has returned its claims to the queue."""
        self._claims.set()

    def _run(self) -> None:
        code = os.read(self._read, 1)[0]
        self.begun.set()
        self._claims.wait(self.claims_timeout)
        # Daemon thread: if the process ends by itself during the grace, this never wakes.
        threading.Event().wait(self.grace)
        _say(f"mailconsole: the console did not finish closing ({self.reason}); exiting\n")
        self._exit(code)


def _say(line: str) -> None:
    """One line on stderr, if it can be written at once: a terminal that stopped
    reading would otherwise block this thread too, before the exit."""
    try:
        os.set_blocking(2, False)
        os.write(2, line.encode("utf-8", "replace"))
    except (OSError, ValueError):
        pass  # the terminal is gone or full: nobody to tell


def exit_on_signals(watchdog: ShutdownWatchdog, on_signal: Callable[[int], None],
                    signals: tuple[signal.Signals, ...] = (signal.SIGHUP, signal.SIGTERM)) -> None:
    """SIGHUP and SIGTERM begin the bounded shutdown, then ask the app to exit.

    A plain signal handler, not the event loop's: it runs on the main thread even
    while that thread is blocked in a lock or a join, which a loop's handler
    never would. Call from the main thread. `on_signal` must be safe there too
    (e.g. `loop.call_soon_threadsafe`).
    """

    def handler(signum: int, _frame: FrameType | None) -> None:
        watchdog.begin(128 + signum, signal.Signals(signum).name)
        on_signal(signum)

    for sig in signals:
        signal.signal(sig, handler)


def exit_on_output_failure(watchdog: ShutdownWatchdog, on_failure: Callable[[], None],
                           thread_name: str = "textual-output") -> None:
    """An error writing to the terminal (EIO, EPIPE: it is gone) begins the bounded shutdown.

    Textual's output thread dies of such an error and later writes queue up behind
    it, so the app cannot be relied on to notice; its traceback is not printed
    (there is no terminal to print it on, and no user should see one).
    """
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not None and args.thread.name == thread_name and issubclass(args.exc_type, OSError):
            watchdog.begin(1, f"the terminal failed: {args.exc_value}")
            on_failure()
            return
        previous(args)

    threading.excepthook = hook
