"""`mailconsole serve`: the engine headless, until SIGINT or SIGTERM."""

from __future__ import annotations

import gc
import logging
import signal

import trio

from ..store import Store
from .config import EngineConfig
from .logsafe import escape
from .runner import Engine

log = logging.getLogger("mailconsole.engine")


class EngineCrashed(Exception):
    """The engine ended on an error; the message is one line saying which."""


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


def run_service(store: Store, config: EngineConfig, *, on_ready=None, prepare=None) -> Engine:  # type: ignore[no-untyped-def]
    """Run one engine in this process until a signal; graceful shutdown (nothing left claimed).

    `prepare(engine)`, if given, is called before the engine starts (to attach
    metrics and notifications to it).

    Raises EngineCrashed if a task of the engine failed. By then the engine has
    recorded every outcome it knew and returned its claims (Engine.run does so
    on every exit); the traceback goes to the log at debug level.
    """
    engine = Engine(store, config)
    if prepare is not None:
        prepare(engine)
    # What the imports built (~half a million objects) lives as long as the process:
    # frozen, no collection traverses it again, and neither does the one at exit
    # (that one alone cost ~0.2 s of CPU per process).
    gc.freeze()
    try:
        trio.run(_serve, engine, on_ready)
    except Exception as exc:
        log.debug("engine %s crashed", engine.engine_id, exc_info=True)
        raise EngineCrashed(f"engine {engine.engine_id} crashed: {_cause(exc)}") from None
    return engine


def _cause(exc: BaseException) -> str:
    """The first real error inside (exception groups nest), as one line."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        exc = (inner or list(exc.exceptions))[0]
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return escape(f"{exc.__class__.__name__}: {first}"[:300] if first else exc.__class__.__name__)
