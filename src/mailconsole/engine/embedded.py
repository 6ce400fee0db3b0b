"""The engine inside another program (the console), in one of two ways.

The console runs on asyncio (Textual); the engine runs on trio. They share only
the store, plus `nudge()`, which tells the engine that a stop was just committed
in this process so the final-dot gate distrusts any older read at once.

* mode="thread": `trio.run` on its own thread. The engine and the UI are two
  threads of one interpreter: they take turns holding the GIL, and every
  return of the UI thread to Python may wait for the engine's thread.
* mode="guest": trio guest mode (`trio.lowlevel.start_guest_run`) on the
  host's asyncio loop. The engine's tasks run on the host's thread, between
  the host's own callbacks; trio waits for I/O on a helper thread and blocking
  store calls still go to worker threads (`trio.to_thread`). Nothing the
  engine does on its own thread may block: it is the UI thread.

A guest engine is started from inside the running loop (`start()`, e.g. from
the app's on_mount) and must be stopped before that loop ends (`aclose()`): a
guest run cannot outlive its host loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

import outcome
import trio

from ..store import Store
from .config import EngineConfig
from .runner import Engine

Mode = Literal["thread", "guest"]
MODES: tuple[Mode, ...] = ("thread", "guest")
log = logging.getLogger("mailconsole.engine")

# While the host asks for priority (`prioritize_host`: the console handling a key),
# each trio tick of a guest engine is followed by a pause of this many times its
# own duration: the engine gets at most a tenth of the host's thread then. At
# other times it runs whenever it has work, as fast as in its own thread.
# (With a quarter, key -> screen p95 was 71-115 ms in back-to-back runs; with a
# tenth 69-76 ms: docs/benchmarks.md.)
HOST_PRIORITY_RATIO = 9.0


class EmbeddedEngine:
    """Runs the engine inside another program: on its own thread, or as a trio guest on asyncio."""

    def __init__(
        self, store: Store, config: EngineConfig, *, engine: Engine | None = None, mode: Mode = "thread"
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
        self.mode: Mode = mode
        self._engine = engine or Engine(store, config)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished: asyncio.Future[None] | None = None  # guest mode: set by the done callback
        self._priority_until = 0.0  # guest mode: loop time until which the host comes first
        self._next_tick_at = 0.0  # guest mode: no trio tick before this loop time
        self.error: BaseException | None = None

    @property
    def engine_id(self) -> str:
        return self._engine.engine_id

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def on_host_loop(self) -> bool:
        """True for a guest engine: the program running the loop starts and stops it (see module doc)."""
        return self.mode == "guest"

    @property
    def started(self) -> bool:
        return self._thread is not None or self._finished is not None

    @property
    def running(self) -> bool:
        if self.mode == "thread":
            return self._thread is not None and self._thread.is_alive()
        return self._finished is not None and not self._finished.done()

    def start(self) -> None:
        """Thread mode: start the thread; returns once the engine runs (heartbeat written).

        Guest mode: call from the thread running the asyncio loop, while it runs;
        returns at once, the engine's first heartbeat follows within milliseconds.
        """
        if self.started:
            raise RuntimeError("engine already started")
        if self.mode == "guest":
            self._start_guest()
            return
        self._thread = threading.Thread(target=self._thread_main, name=f"engine-{self.engine_id}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self.error is not None:
            raise self.error

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._engine.run)
            self._started.set()
            if self._stop_requested:  # asked to stop while it was still starting
                self._engine.request_stop()

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported by start() or kept for the console to show
            self.error = exc
        finally:
            self._started.set()

    def _start_guest(self) -> None:
        loop = asyncio.get_running_loop()  # RuntimeError outside a running loop: start it from the app
        self._loop = loop
        self._finished = loop.create_future()
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=lambda fn: loop.call_soon_threadsafe(self._tick, fn),
            run_sync_soon_not_threadsafe=lambda fn: loop.call_soon(self._tick, fn),
            done_callback=self._guest_done,
            # asyncio owns the signal wakeup fd (Textual's SIGHUP/SIGTERM handlers):
            # trio must not replace it; the engine itself handles no signals.
            host_uses_signal_set_wakeup_fd=True,
        )

    def _tick(self, fn: Callable[[], object]) -> None:
        """Run one trio tick on the host loop, later if the host has priority now."""
        loop = self._loop
        assert loop is not None
        now = loop.time()
        if now < self._next_tick_at and now < self._priority_until:
            loop.call_at(min(self._next_tick_at, self._priority_until), self._tick, fn)
            return
        started = time.perf_counter()
        try:
            fn()
        finally:
            if loop.time() < self._priority_until:
                self._next_tick_at = loop.time() + (time.perf_counter() - started) * HOST_PRIORITY_RATIO

    def prioritize_host(self, seconds: float) -> None:
        """Host thread only: for `seconds`, the host's own work comes first (see HOST_PRIORITY_RATIO).

        The console calls it for every key, so that a key's handling and its
        frame are not spread out between the engine's ticks. A thread engine
        does not share the host's thread: nothing to do.
        """
        if self._loop is not None:
            self._priority_until = max(self._priority_until, self._loop.time() + seconds)

    def _guest_done(self, result: outcome.Outcome[None]) -> None:
        if isinstance(result, outcome.Error):
            self.error = result.error
            log.error("the engine inside this program stopped: %r", result.error)
        self._started.set()
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    def nudge(self) -> None:
        """Thread-safe: a stop/pause/delete was just committed here; re-check the gate now."""
        self._engine.nudge()

    def _request_stop(self) -> None:
        """Thread-safe: ask for a graceful shutdown (claimed-but-unsent messages go back)."""
        self._stop_requested = True
        if self._token is not None:
            try:
                self._token.run_sync_soon(self._engine.request_stop)
            except trio.RunFinishedError:
                pass

    async def aclose(self, timeout: float = 10.0) -> None:
        """Graceful stop, awaited on the host loop (guest mode; thread mode waits in a thread)."""
        if self.mode == "thread":
            await asyncio.to_thread(self.stop, timeout)
            return
        if not self.running:
            return
        self._request_stop()
        assert self._finished is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._finished), timeout)
        except TimeoutError:
            log.error("the engine did not stop within %.0f s; its claims come back when their leases expire", timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful: claimed-but-unsent messages go back to the queue; waits for the engine.

        Blocking, so not for a guest engine while its loop runs (use `aclose()`).
        A guest engine whose loop has already ended cannot be stopped any more;
        its claims come back when their leases expire.
        """
        if self.mode == "guest":
            if self.running:
                loop = self._loop
                if loop is not None and loop.is_running():
                    raise RuntimeError("a guest engine is stopped with `await aclose()` on its loop")
                log.error("the loop ended before the engine inside it stopped; "
                          "its claims come back when their leases expire")
            return
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._request_stop()
        thread.join(timeout)
