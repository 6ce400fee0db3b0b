"""The final-dot gate: the freshest stop state, shared by every worker.

A worker that has written a message body asks the gate whether the message may
still be sent, right before writing the end-of-data dot. The answer must come
from a read of the store that *started after the worker arrived*: a read that
began earlier may predate a stop that has since committed. The read is made
on the engine's thread, by the first worker of a turn of the event loop for
every worker that arrived in that turn (see `fresh`): on its own connection it
takes ~10-20 µs and never waits for writers (WAL), which is cheaper than
handing it to another thread and coming back.

`nudge()` covers stops committed in this same process (the console): it marks
every read already started as too old, so nobody passes on a read that might
predate the stop the caller has just committed. It is safe to call from any
thread: it only writes one integer and wakes the periodic reader.

The read also covers stops the store has not recorded yet: a stop that finds
the store busy posts a stop intent on this host, and the read (store/gate_io.py)
lists the intents before it reads the store, so an account with a live intent
is refused here like a stopped one (store/stop_intent.py). Its generation is
still the store's, so nothing is acknowledged for it until the stop commits.

An answer is good for FAIL_CLOSED_AFTER seconds from the moment its read
*began*: a read that took longer is not used (the worker reads again), and a
worker that reaches its dot later than that is turned back (`expired`). So an
engine that cannot read the store, on a host cut off from it, sends nothing
allowed before a stop later than that deadline after the stop's commit, without
hearing from anyone (docs/scale-out.md); a stop relies on it for the engines it
cannot confirm, with a bound of its own that is longer.

The gate also decides what this engine may acknowledge: the stop generation of
an account is honoured once a read that shows the stop has completed and no
worker is still writing a dot it was allowed on an older read.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

import trio

from ..store.backends import Fence
from ..store.queue import Control
from .counters import GateTimings

ReadControl = Callable[[], Control]
log = logging.getLogger("mailconsole.engine")

# After a failed read the gate holds every dot and tries again this often.
RETRY_AFTER_FAILURE = 0.1
# How long a gate answer may be used, from the start of its read (seconds of this
# host's monotonic clock). Shorter than the stop's own bound (dot_fence.DEFAULT_WAIT).
FAIL_CLOSED_AFTER = 1.0


class _SharedRead:
    """One read of the stop state that several workers wait for."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.ok = False  # the read succeeded


class Gate:
    def __init__(
        self, read: ReadControl, initial: Control, fence: Fence | None = None, timings: GateTimings | None = None
    ) -> None:
        self._read = read
        self._timings = timings  # how long each visit waited (metrics); None: not measured
        # Held from a worker's arrival until its dot is written or refused, so that a
        # stop in any process can wait out dots allowed before it (store/dot_fence.py).
        self._fence = fence
        self.snapshot = initial
        self._started = 0  # sequence number of the last read started
        self._done = 0  # sequence number of the last read completed
        self._not_before = 0  # reads older than this are distrusted (nudge)
        self._wanted = trio.Event()
        self._passing: Counter[int] = Counter()  # read seq -> dots being written on it
        self._began: dict[int, float] = {}  # read seq -> when it began, while dots pass on it
        self._read_began = 0.0  # when the last completed read began (time.monotonic)
        self._token: trio.lowlevel.TrioToken | None = None
        self.on_read: Callable[[Control], None] | None = None  # called after each read
        self._joinable: _SharedRead | None = None  # the read the workers arriving now will share

    # -- reading -------------------------------------------------------------

    def _read_now(self) -> None:
        """One read of the stop state, on this thread; raises if the store can't be read."""
        self._started += 1
        seq = self._started
        began = time.monotonic()
        snapshot = self._read()
        self.snapshot = snapshot
        self._done = seq
        self._read_began = began
        if self.on_read is not None:
            self.on_read(snapshot)

    async def run_reader(self, poll_interval: float) -> None:
        """Read the stop state at least every poll_interval, and at once after a nudge,
        so that acknowledgements and claims follow the store while no worker is at the gate."""
        self._token = trio.lowlevel.current_trio_token()
        while True:
            with trio.move_on_after(poll_interval):
                await self._wanted.wait()
            self._wanted = trio.Event()
            try:
                self._read_now()
            except Exception as exc:
                log.warning("cannot read the stop state, holding every dot: %s", exc)
                await trio.sleep(max(poll_interval, RETRY_AFTER_FAILURE))

    def nudge(self) -> None:
        """A stop/pause/delete was just committed here: distrust reads already begun."""
        self._not_before = self._started + 1
        token = self._token
        if token is None:
            return
        try:
            token.run_sync_soon(lambda: self._wanted.set())  # the reader's current event
        except trio.RunFinishedError:
            pass

    # -- the workers' side ---------------------------------------------------

    async def fresh(self) -> Control:
        """The stop state from a read that started after this call.

        Fails closed: while the store can't be read, nobody passes; the read is
        tried again every RETRY_AFTER_FAILURE seconds. A read that took longer
        than FAIL_CLOSED_AFTER is not used either.

        The workers that arrive in the same turn of the event loop share one read:
        the first lets the others of that turn arrive (one scheduling round), then
        reads for all of them, so the read still begins after each one arrived. A
        read costs ~20 µs; with many connections several reach their dot per turn.
        """
        while True:
            shared = self._joinable
            if shared is None:
                shared = self._joinable = _SharedRead()
                try:
                    # Not a cancellation point: the others wait for this read.
                    await trio.lowlevel.cancel_shielded_checkpoint()
                finally:
                    self._joinable = None  # from here on, an arrival waits for the next read
                try:
                    self._read_now()
                    shared.ok = True
                except Exception as exc:
                    log.warning("cannot read the stop state, holding every dot: %s", exc)
                finally:
                    shared.done.set()
            else:
                await shared.done.wait()
            if not shared.ok:
                await trio.sleep(RETRY_AFTER_FAILURE)
                continue
            # The latest read, the shared one or a later one (reads never overlap:
            # each runs on this thread), began after this worker arrived.
            if self._done < self._not_before:
                continue  # a nudge came during the read
            if time.monotonic() - self._read_began > FAIL_CLOSED_AFTER:
                log.warning("the stop state took over %.1f s to read; reading again", FAIL_CLOSED_AFTER)
                continue
            return self.snapshot

    def expired(self, seq: int) -> bool:
        """Whether the answer of read `seq` is too old to write a dot on (FAIL_CLOSED_AFTER).

        Asked last before the dot; a caller told True refuses the message (and
        still calls `passed`).
        """
        return time.monotonic() - self._began.get(seq, 0.0) > FAIL_CLOSED_AFTER

    def may_start(self, mailing_id: int) -> bool:
        """Whether to begin a transaction, from the latest read, without waiting.

        A mailing the last read did not cover was just claimed, and the claim itself
        checked the stop; the fresh read at the gate decides for it.
        """
        snap = self.snapshot
        if mailing_id not in snap.mailing_status:
            return len(snap.stopped_accounts) < len(snap.generations)
        return snap.may_send(mailing_id)

    async def passage(self, mailing_id: int) -> int | None:
        """Wait for a fresh read; the read's number if the message may pass, else None.

        A caller that gets a number must call `passed(number)` once its dot is written
        (or failed to be written), in a `finally`.
        """
        snapshot = await self._fresh_held()
        if not snapshot.may_send(mailing_id):
            self._release()
            return None
        seq = self._done
        self._passing[seq] += 1
        self._began[seq] = self._read_began
        return seq

    async def passage_many(self, mailing_ids: list[int]) -> tuple[int, list[bool]]:
        """`passage` for several messages at once, for a transport whose "dots" all
        happen right after the answer, with no wait in between (null:).

        Every message arrived before the call, so one fresh read covers them all.
        Returns the read's number and, per message, whether it may pass; call
        `passed(number, count)` with the number allowed once their dots are done.
        """
        snapshot = await self._fresh_held()
        allowed = [snapshot.may_send(m) for m in mailing_ids]
        seq = self._done
        count = sum(allowed)
        if count:
            self._passing[seq] += count
            self._began[seq] = self._read_began
        else:
            self._release()
        return seq, allowed

    def passed(self, seq: int, count: int = 1) -> None:
        """Once per allowed `passage`/`passage_many` call, after its dots are written."""
        if not count:
            return
        self._release()
        self._passing[seq] -= count
        if not self._passing[seq]:
            del self._passing[seq]
            self._began.pop(seq, None)
            if not self._passing and self.on_read is not None:
                # The last dot allowed on an old read is out: a stop seen since can
                # be acknowledged now rather than at the next read.
                self.on_read(self.snapshot)

    async def _fresh_held(self) -> Control:
        """`fresh()` inside the dot fence; the caller releases it (refusal or `passed`)."""
        began = time.perf_counter()
        self._hold()
        held = time.perf_counter()
        try:
            snapshot = await self.fresh()
        except BaseException:
            self._release()
            raise
        if self._timings is not None:
            self._timings.fence.observe(held - began)
            self._timings.check.observe(time.perf_counter() - began)
        return snapshot

    def _hold(self) -> None:
        if self._fence is not None:
            self._fence.hold()

    def _release(self) -> None:
        if self._fence is not None:
            self._fence.release()

    # -- acknowledgement -----------------------------------------------------

    def honoured(self) -> dict[int, int] | None:
        """account id -> stop generation no message of this engine can get past any more
        (None: not settled yet, keep the previous acknowledgement).

        A generation is honoured when the latest completed read shows it and no dot
        allowed by an older read is still being written. For an account that is not
        stopped the generation is trivially honoured (its stop was lifted).
        """
        snap = self.snapshot
        oldest_pass = min(self._passing) if self._passing else None
        if oldest_pass is not None and oldest_pass < self._done:
            # A dot allowed on an older read is still on its way; it may belong to
            # an account stopped since. Keep the previous acknowledgement for now.
            return None
        return dict(snap.generations)
