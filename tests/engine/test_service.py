"""`mailconsole serve`'s process: what run_service does around the engine."""

from __future__ import annotations

import gc
import os
import signal

from mailconsole.engine.runner import Engine
from mailconsole.engine.service import run_service

from .conftest import fast_config


def test_the_start_up_heap_is_frozen_before_the_engine_runs(store) -> None:  # type: ignore[no-untyped-def]
    """What the imports built is frozen: neither the engine's collections nor the one
    at the interpreter's exit traverse it again (CPU per message, docs/benchmarks.md)."""
    frozen: list[int] = []

    def ready(engine: Engine) -> None:
        frozen.append(gc.get_freeze_count())
        os.kill(os.getpid(), signal.SIGTERM)  # the way `serve` is told to stop

    gc.unfreeze()
    try:
        engine = run_service(store, fast_config(), on_ready=ready)
    finally:
        gc.unfreeze()  # the rest of the test session collects as before
    assert frozen and frozen[0] > 1000
    assert engine.sent_total == 0
