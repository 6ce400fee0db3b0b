"""`mailconsole serve`: the engine headless, until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal

import trio

from ..store import Store
from .config import EngineConfig
from .runner import Engine

log = logging.getLogger("mailconsole.engine")


async def _serve(engine: Engine, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            if on_ready is not None:
                on_ready(engine)
            async for signum in signals:
                log.info("signal %s: stopping gracefully", signal.Signals(signum).name)
                engine.request_stop()
                break


def run_service(store: Store, config: EngineConfig, *, on_ready=None) -> Engine:  # type: ignore[no-untyped-def]
    """Run one engine in this process until a signal; graceful shutdown (nothing left claimed)."""
    engine = Engine(store, config)
    trio.run(_serve, engine, on_ready)
    return engine
