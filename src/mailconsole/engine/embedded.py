"""The engine inside another program (the console): `trio.run` on its own thread.

The console runs on asyncio (Textual); the engine runs on trio. They share only
the store, plus `nudge()`, which tells the engine that a stop was just committed
in this process so the final-dot gate distrusts any older read at once.
"""

from __future__ import annotations

import threading

import trio

from ..store import Store
from .config import EngineConfig
from .runner import Engine


class EmbeddedEngine:
    """Runs the engine with trio.run on its own thread, for the console."""

    def __init__(self, store: Store, config: EngineConfig, *, engine: Engine | None = None) -> None:
        self._engine = engine or Engine(store, config)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self.error: BaseException | None = None

    @property
    def engine_id(self) -> str:
        return self._engine.engine_id

    @property
    def engine(self) -> Engine:
        return self._engine

    def start(self) -> None:
        """Start the engine thread; returns once the engine runs (heartbeat written)."""
        if self._thread is not None:
            raise RuntimeError("engine already started")
        self._thread = threading.Thread(target=self._main, name=f"engine-{self.engine_id}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                await nursery.start(self._engine.run)
                self._started.set()

        try:
            trio.run(main)
        except BaseException as exc:  # reported by start() or kept for the console to show
            self.error = exc
        finally:
            self._started.set()

    def nudge(self) -> None:
        """Thread-safe: a stop/pause/delete was just committed here; re-check the gate now."""
        self._engine.nudge()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful: claimed-but-unsent messages go back to the queue; joins the thread."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        if self._token is not None:
            try:
                trio.from_thread.run_sync(self._engine.request_stop, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        thread.join(timeout)
