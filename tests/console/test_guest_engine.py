"""The engine inside the console as a trio guest on the console's own asyncio loop.

Real store, real engine, real SMTP server: the console starts the guest engine
once its loop runs, the stop key stops it (nothing reaches the server after the
stop), and quitting or losing the terminal returns its claims to the queue
before the loop ends. With the engine on the UI thread, the stop's dot fence
must never wait for a UI thread that is itself waiting for the stop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.engine.config import EngineConfig
from mailconsole.engine.embedded import EmbeddedEngine
from mailconsole.store import Store, accounts, importer, mailings, status
from mailconsole.store.backends import FenceResult
from mailconsole.store.engines import list_engines

from .builder import OPERATOR
from .smtpsink import Recorder, smtp_server  # noqa: F401  (fixture)

FAST = dict(idle_claim_interval=0.02, heartbeat_interval=0.2, maintenance_interval=0.2, shutdown_grace=2.0)


def _store(tmp_path: Path, n: int) -> tuple[Store, int]:
    store = Store(store_at(tmp_path / "guest.db"))
    csv = tmp_path / "r.csv"
    csv.write_text("email,first_name\n" + "".join(f"r{i}@example.org,N{i}\n" for i in range(n)))
    mid = importer.create_mailing(store, OPERATOR, name="Sale", sender="shop@example.com", subject="Hi {{ first_name }}",
                                  text_body="Hello {{ first_name }}\n", html_body=None, recipients=csv).mailing_id
    return store, mid


def _smtp_engine(store: Store, port: int, rate: float = 200) -> EmbeddedEngine:
    config = EngineConfig(transport=f"smtp://127.0.0.1:{port}?starttls=off", workers=4, rate=rate, **FAST)  # type: ignore[arg-type]
    return EmbeddedEngine(store, config, mode="guest")


async def _until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _assert_claims_returned(store: Store, mid: int, total: int, engine: EmbeddedEngine, server: Recorder) -> None:
    assert not engine.running and engine.error is None
    m = mailings.get_mailing(store, mid)
    assert m.in_flight == 0, "the engine left messages claimed"
    assert m.sent + m.queued == total
    assert server.count == m.sent  # everything the server accepted is recorded, nothing else
    [info] = list_engines(store, include_gone=True)
    assert info.id == engine.engine_id and info.state == "stopped"


def test_started_on_mount_sends_and_returns_claims_on_quit(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    port, server = smtp_server
    store, mid = _store(tmp_path, 3000)
    engine = _smtp_engine(store, port)
    app = MailConsole(store, actor=OPERATOR, engine=engine, poll_interval=0.2)
    assert not engine.started  # it needs the console's loop

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(lambda: server.count >= 30, 20, "the first messages")
            assert engine.running
            await _until(lambda: mailings.get_mailing(store, mid).in_flight > 0, 5, "claims in hand")
            await pilot.press("q", "y")  # it asks first: sending stops with the console
        # The app stopped the engine before its loop (this one) went on.
        _assert_claims_returned(store, mid, 3000, engine, server)

    asyncio.run(main())
    assert 30 <= server.count < 3000


def test_lost_terminal_ends_the_console_and_returns_claims(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP (an SSH drop) still reaches the console's handler with trio running as a guest on its loop."""
    port, server = smtp_server
    store, mid = _store(tmp_path, 3000)
    engine = _smtp_engine(store, port)
    app = MailConsole(store, actor=OPERATOR, engine=engine, poll_interval=0.2, handle_signals=True)

    async def main() -> None:
        async with app.run_test(size=(100, 30)):
            await _until(lambda: server.count >= 30, 20, "the first messages")
            os.kill(os.getpid(), signal.SIGHUP)
            await _until(lambda: not app.is_running, 10, "the console to end on SIGHUP")
        _assert_claims_returned(store, mid, 3000, engine, server)

    asyncio.run(main())


def _full_rate_console(tmp_path: Path, port: int):  # type: ignore[no-untyped-def]
    """A console over 20,000 queued messages with an unpaced guest engine, 8 connections."""
    store, mid = _store(tmp_path, 20000)
    config = EngineConfig(transport=f"smtp://127.0.0.1:{port}?starttls=off", workers=8, **FAST)  # type: ignore[arg-type]
    engine = EmbeddedEngine(store, config, mode="guest")
    return store, mid, engine, MailConsole(store, actor=OPERATOR, engine=engine, poll_interval=0.2)


def _record_fences(app: MailConsole) -> list[FenceResult]:
    """What each stop's dot fence found: passed, or given up after its 2 s timeout.

    Whether the fence passed says directly what a stall on it would only show as time.
    """
    found: list[FenceResult] = []
    passed = app._fence_passed

    def record(result: FenceResult) -> None:
        found.append(result)
        passed(result)

    app._fence_passed = record  # type: ignore[method-assign]
    return found


def test_stop_key_at_full_rate_nothing_after_and_no_stall_on_the_fence(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """Unpaced: workers sit at the final-dot gate (holding the dot fence) all the time.

    The stop's thread passes the fence only once the guest engine, on the UI
    thread, turns those workers back: the UI must not be waiting for that thread
    meanwhile, or the fence would run into its 2 s timeout.
    """
    port, server = smtp_server
    store, mid, engine, app = _full_rate_console(tmp_path, port)
    fences = _record_fences(app)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(lambda: server.count >= 200, 30, "sending at full rate")
            await pilot.press("f2")  # returns once the key was handled (and the loop went idle)
            await _until(lambda: app.stop_timings, 5, "the stop to commit")
            at_commit = server.count
            # Milliseconds when idle; seconds would be a commit queued behind the engine's writes.
            assert app.stop_timings[0] < 2.0
            await _until(lambda: app.stop_request is not None and not app.stop_request.is_alive(), 5, "the stop's thread")
            assert [f.passed for f in fences] == [True], "the stop waited on the dot fence until it gave up"
            await _until(lambda: status.overview(store).quiescent, 5, "the engine to acknowledge the stop")
            at_quiet = server.count
            await asyncio.sleep(0.5)
            assert server.count == at_quiet, "the server received messages after the engine stopped"
            assert at_quiet - at_commit <= 8  # at most the dots already on the wire, one per worker
            assert engine.running  # stopped sending, still running (a resume sends again)
        _assert_claims_returned(store, mid, 20000, engine, server)

    asyncio.run(main())
    assert accounts.state(store).stopped


def test_quit_right_after_the_stop_key(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """The stop's commit and fence, then the engine's graceful stop, all while the app unmounts."""
    port, server = smtp_server
    store, mid, engine, app = _full_rate_console(tmp_path, port)
    fences = _record_fences(app)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(lambda: server.count >= 200, 30, "sending at full rate")
            await pilot.press("f2", "q")
            quit_at = time.monotonic()
        # A quit that blocks the loop while the stop's thread needs it stalls the fence
        # (below); one that never lets the engine stop waits out its 15 s (ENGINE_STOP_TIMEOUT).
        assert time.monotonic() - quit_at < 8.0
        _assert_claims_returned(store, mid, 20000, engine, server)

    asyncio.run(main())
    assert accounts.state(store).stopped
    assert [f.passed for f in fences] == [True], "the quit held up the stop's dot fence until it gave up"
