"""A console whose terminal is gone always exits, after returning its engine's claims.

The real console runs in tmux (Textual gets a real terminal) with its engine
sending to a real SMTP server on loopback; the tmux session is killed, as an
SSH drop does. The process must be gone within the shutdown's bound, with no
message left claimed by its engine. The hang this guards against was seen once
in six tries, so each test tries several times.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from store_backend import ON_POSTGRESQL, store_at
from mailconsole.console.app import ENGINE_STOP_TIMEOUT, STOP_QUIT_WAIT
from mailconsole.console.shutdown import GRACE
from mailconsole.store import Store, importer
from mailconsole.store.engines import live_engines
from mailconsole.store.schema import messages

from .builder import OPERATOR
from .smtpsink import Recorder, _free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))
TRIES = 6
RECIPIENTS = 4000
# The most a console may take to exit once its terminal is gone (launch.run_console's watchdog).
BOUND = STOP_QUIT_WAIT + ENGINE_STOP_TIMEOUT + 2 + GRACE


class SlowRecorder(Recorder):
    """Takes 50 ms per message, so that the engine always has messages claimed."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp() -> Iterator[tuple[int, Recorder]]:
    recorder = SlowRecorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, recorder
    controller.stop()


class Tmux:
    """A private tmux server; kept alive when its sessions die, killed at the end."""

    def __init__(self) -> None:
        self.socket = f"mc-console-{secrets.token_hex(4)}"
        self("start-server", ";", "set-option", "-g", "exit-empty", "off")

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              check=True, capture_output=True, text=True).stdout

    def console(self, name: str, db: Path, port: int) -> int:
        """The console in a new session; returns its pid. Its stderr stays the terminal: Textual draws on it."""
        command = (f"exec env TEXTUAL_ANIMATIONS=none MAILCONSOLE_TRANSPORT='smtp://127.0.0.1:{port}?starttls=off' "
                   f"{MAILCONSOLE} --db {store_at(db)}")
        self("new-session", "-d", "-s", name, "-x", "120", "-y", "36", command)
        return int(self("list-panes", "-t", name, "-F", "#{pane_pid}").split()[0])

    def screen(self, name: str) -> str:
        try:
            return self("capture-pane", "-p", "-t", name)
        except subprocess.CalledProcessError:
            return ""

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    server = Tmux()
    yield server
    server.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between the open and the read
        return False


def claimed(store: Store) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(messages).where(messages.c.state == "claimed")).scalar_one()


def wait_for(condition, timeout: float, what: str, tmux: Tmux | None = None, name: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            screen = tmux.screen(name) if tmux else ""
            pytest.fail(f"timed out waiting for {what}\n{screen}")
        time.sleep(0.05)


@pytest.fixture
def sending_store(tmp_path: Path) -> Path:
    db = tmp_path / "store.db"
    store = Store(store_at(db))
    csv = tmp_path / "r.csv"
    csv.write_text("email,first_name\n" + "".join(f"r{i}@example.org,N{i}\n" for i in range(RECIPIENTS)))
    importer.create_mailing(store, OPERATOR, name="Sale", sender="shop@example.com", subject="Sale",
                            text_body="Hello {{ first_name }}\n", html_body=None, recipients=csv)
    store.close()
    return db


def test_killing_the_terminal_ends_the_console_with_its_claims_returned(
    sending_store: Path, slow_smtp: tuple[int, Recorder], tmux: Tmux
) -> None:
    port, server = slow_smtp
    store = Store(store_at(sending_store))
    took = []
    for n in range(TRIES):
        name = f"c{n}"
        pid = tmux.console(name, sending_store, port)
        try:
            before = server.count
            wait_for(lambda: server.count > before + 5 and claimed(store) > 0, 60,
                     "the console's engine to send", tmux, name)
            if not ON_POSTGRESQL:  # a long URL does not fit the 80-column header (header.py shortens paths only)
                assert "store " in tmux.screen(name) and str(sending_store.name) in tmux.screen(name)
            start = time.monotonic()
            tmux("kill-session", "-t", name)  # the terminal is gone, as on an SSH drop
            wait_for(lambda: not alive(pid), BOUND + 5, f"console {n} to exit")
            took.append(time.monotonic() - start)
            assert took[-1] <= BOUND, took
            assert claimed(store) == 0, f"try {n}: messages left claimed by the console's engine"
            assert not live_engines(store)  # it said goodbye: no engine left looking alive
        finally:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    print(f"\nconsole gone after the terminal was killed, seconds: {', '.join(f'{t:.2f}' for t in took)}")
    assert server.count < RECIPIENTS  # every try had something to send


def test_sigterm_ends_a_console_whose_loop_is_stuck(sending_store: Path, slow_smtp: tuple[int, Recorder],
                                                    tmux: Tmux) -> None:
    """The terminal stops reading (its tmux server frozen): Textual's output blocks, and the
    event loop with it, so only a signal handler outside the loop can still act on SIGTERM."""
    port, server = slow_smtp
    store = Store(store_at(sending_store))
    pid = tmux.console("frozen", sending_store, port)
    server_pid = int(tmux("display-message", "-p", "#{pid}").strip())
    try:
        wait_for(lambda: server.count > 5, 60, "the console's engine to send", tmux, "frozen")
        os.kill(server_pid, signal.SIGSTOP)
        try:
            # The console keeps redrawing (meters, counts) into a terminal that reads nothing.
            time.sleep(3)
            start = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not alive(pid), BOUND + 5, "the console to exit on SIGTERM")
            took = time.monotonic() - start
        finally:
            os.kill(server_pid, signal.SIGCONT)
        print(f"\nconsole gone {took:.2f} s after SIGTERM with its terminal frozen")
        assert took <= BOUND
        assert claimed(store) == 0, "messages left claimed by the console's engine"
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_ends_a_console_with_its_claims_returned(sending_store: Path, slow_smtp: tuple[int, Recorder],
                                                         tmux: Tmux) -> None:
    port, server = slow_smtp
    store = Store(store_at(sending_store))
    pid = tmux.console("term", sending_store, port)
    try:
        wait_for(lambda: server.count > 5 and claimed(store) > 0, 60, "the console's engine to send", tmux, "term")
        start = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), BOUND + 5, "the console to exit on SIGTERM")
        took = time.monotonic() - start
        print(f"\nconsole gone {took:.2f} s after SIGTERM")
        assert took <= BOUND and claimed(store) == 0 and not live_engines(store)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
