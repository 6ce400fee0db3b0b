"""The shutdown watchdog: once begun, the process ends within its bound, with the code given."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from mailconsole.console.shutdown import ShutdownWatchdog, exit_on_output_failure, exit_on_signals


def _watchdog(claims_timeout: float, grace: float) -> tuple[ShutdownWatchdog, list[tuple[int, float]]]:
    exits: list[tuple[int, float]] = []
    done = threading.Event()

    def fake_exit(code: int) -> None:  # os._exit would end the test run
        exits.append((code, time.monotonic()))
        done.set()

    watchdog = ShutdownWatchdog(claims_timeout, grace, exit=fake_exit)
    watchdog.done = done  # type: ignore[attr-defined]
    watchdog.arm()
    return watchdog, exits


def test_nothing_happens_before_shutdown_begins() -> None:
    watchdog, exits = _watchdog(0.05, 0.05)
    time.sleep(0.3)
    assert exits == [] and not watchdog.begun.is_set()


def test_grace_after_the_claims_are_returned() -> None:
    watchdog, exits = _watchdog(30, 0.2)
    start = time.monotonic()
    watchdog.begin(129, "SIGHUP")
    time.sleep(0.1)
    assert exits == []  # waiting for the engine's claims
    watchdog.claims_returned()
    assert watchdog.done.wait(5)  # type: ignore[attr-defined]
    code, at = exits[0]
    assert code == 129 and 0.3 <= at - start < 2


def test_bounded_even_if_the_claims_never_come_back() -> None:
    watchdog, exits = _watchdog(0.3, 0.1)
    start = time.monotonic()
    watchdog.begin(143)
    watchdog.begin(0)  # only the first counts
    assert watchdog.done.wait(5)  # type: ignore[attr-defined]
    assert exits[0][0] == 143 and 0.4 <= exits[0][1] - start < 2


def test_a_signal_begins_it_from_the_handler() -> None:
    watchdog, exits = _watchdog(0.1, 0.1)
    seen: list[int] = []
    previous = signal.getsignal(signal.SIGHUP)
    try:
        exit_on_signals(watchdog, seen.append, signals=(signal.SIGHUP,))
        os.kill(os.getpid(), signal.SIGHUP)
        assert watchdog.done.wait(5)  # type: ignore[attr-defined]
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert seen == [signal.SIGHUP] and exits[0][0] == 128 + signal.SIGHUP and watchdog.reason == "SIGHUP"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the other thread's error
def test_the_terminal_failing_begins_it() -> None:
    """Textual's output thread dying of EIO (the terminal is gone) begins the shutdown; other errors do not."""
    watchdog, exits = _watchdog(0.1, 0.1)
    failed: list[bool] = []
    previous = threading.excepthook
    try:
        exit_on_output_failure(watchdog, lambda: failed.append(True))

        def write_to_a_gone_terminal() -> None:
            raise OSError(5, "Input/output error")

        other = threading.Thread(target=lambda: 1 / 0, name="some-worker")
        other.start()
        other.join()
        assert not failed and not watchdog.begun.is_set()
        output = threading.Thread(target=write_to_a_gone_terminal, name="textual-output")
        output.start()
        output.join()
        assert watchdog.done.wait(5)  # type: ignore[attr-defined]
    finally:
        threading.excepthook = previous
    assert failed == [True] and exits[0][0] == 1 and "Input/output error" in watchdog.reason
