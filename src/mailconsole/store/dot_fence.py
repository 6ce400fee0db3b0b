"""The dot fence: a stop returns only once no dot allowed before it can still be written.

The final-dot gate answers from a store read that started after the worker
arrived, but between that read and the dot's write() a sender can be descheduled
by the OS. Under heavy CPU starvation that pause outlasted a whole `mailconsole
stop` (commit, print, exit), and a dot allowed just before the stop reached the
server after the command had returned.

So every engine holds the fence from the moment a worker arrives at the gate
until its dot is written (or refused), and a stop, after its commit, passes it
once: any dot written after that moment belongs to a gate visit that began after
the commit, whose read therefore saw the stop. How the fence is built is the
store backend's (store/backends/): a file lock beside an SQLite store; on a
server shared by many hosts, the engines' acknowledgements and their fail-closed
deadline.
"""

from __future__ import annotations

import os

from .backends import Fence, FenceResult
from .connection import Store

# How long a stop waits for dots already allowed (MAILCONSOLE_STOP_BOUND
# overrides it). They normally take microseconds; only a sender stuck writing
# into a full socket buffer, stopped by a signal or cut off from the store holds
# the fence this long, and the stop itself has already committed.
DEFAULT_WAIT = 2.0


def stop_bound() -> float:
    """The stop's wait for the fence, in seconds: MAILCONSOLE_STOP_BOUND or DEFAULT_WAIT."""
    try:
        value = float(os.environ.get("MAILCONSOLE_STOP_BOUND", DEFAULT_WAIT))
    except ValueError:
        return DEFAULT_WAIT
    return value if 0 < value < 3600 else DEFAULT_WAIT


def DotFence(store: Store) -> Fence:  # noqa: N802 - a constructor by use
    """An engine's hold on the fence, counted across its workers (Fence.hold/release)."""
    return store.backend.fence()


def fence_result(store: Store, timeout: float | None = None) -> FenceResult:
    """After a stop's commit: wait until no engine can still write a dot allowed before it.

    Gives up after `timeout` (default: stop_bound()); the result then names the
    engines not confirmed and when they are certain to have stopped.
    """
    return store.backend.wait_for_dots(store, stop_bound() if timeout is None else timeout)


def wait_for_allowed_dots(store: Store, timeout: float | None = None) -> bool:
    """`fence_result`, as True once the fence was passed, False on timeout."""
    return fence_result(store, timeout).passed
