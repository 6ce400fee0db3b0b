"""The engine: one trio nursery that claims, sends, records and heartbeats.

    claimer --(memory channel)--> N sender tasks --(channel)--> result writer
       gate reader (final-dot gate)   heartbeat + lease renewal   maintenance

Every database call runs in a worker thread (`trio.to_thread.run_sync`): the
store is synchronous SQLAlchemy and must not block the event loop. The store
enforces the stop for claims; the gate enforces it for messages already claimed.

What a relay or a stored row does cannot take the engine's time or its records:
a transaction that has not reached its dot is cut as soon as a stop (or the
shutdown) applies to it, however slowly the server answers; a message that
cannot be built fails alone, with its reason and fail kind; and every outcome
handed to the writer is kept until it is recorded, so that even a crash records
what the server accepted before the engine exits.
"""

from __future__ import annotations

import logging
import math
import os
import random
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio

from ..store import Store, StoreError
from ..store import auto_pause
from ..store import policy as policy_store
from ..store import engines as engine_rows
from ..store import mailings as mailing_store
from ..store import queue
from ..store.dot_fence import DotFence
from ..store.gate_io import AckWriter, ControlReader
from ..store.queue import Claimed, Control, Outcome
from .backlog import RelayBacklog
from .addresses import address_problem, list_unsubscribe_problem, sender_problem
from .config import EngineConfig
from .counters import EngineCounters
from .gate import Gate
from .dkim_signing import load_signer
from .message import Built, CompiledRevision, MergeError, RevisionData
from .outage import CHECK_EVERY, Outage
from .smtp import GateClosed, SMTPError
from .transports import Envelope, Session, Transport, make_transport
from ..watch import DEFERRED, OK, PERMANENT, Verdict, Watch

log = logging.getLogger("mailconsole.engine")


# Why a failed message failed (messages.fail_kind): its template, an address or
# header value that cannot be sent, or the server (a refusal, or out of attempts).
TEMPLATE, ADDRESS, SMTP = "template", "address", "smtp"


@dataclass(frozen=True)
class Unsendable:
    """Why no message of a mailing's revision can be built (it fails each one alone)."""

    revision_id: int
    kind: str
    reason: str


@dataclass(frozen=True)
class Work:
    claimed: Claimed
    revision: CompiledRevision | Unsendable | None  # None: the mailing has no revision (cannot happen via the store)


Prepared = tuple[Work, Built]  # a message that may be sent, built

# Most messages one sender task builds before one gate answer covers them all
# (transports with instantaneous dots): a ~10 µs read per 16 messages costs little,
# and building 16 (~0.2 ms) keeps each turn of the event loop short, which is what
# a console running the engine on its own loop (guest mode) waits for between keys.
# (64 gave the same null: rate and key -> screen p95 up to 95 ms instead of 66.)
INSTANT_BATCH = 16
# How long one wait for a wake-up lasts in its thread (see _wakeup_loop): also how
# long a shutdown may wait for that thread to come back.
WAKEUP_WAIT = 0.5


# How often the watchdog looks for transactions past their deadline (seconds).
WATCH_TICK = 0.05


class Pacer:
    """Spaces sends evenly to honour a messages/s cap shared by all sender tasks."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = trio.current_time()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await trio.sleep_until(slot)


def new_engine_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Engine:
    def __init__(
        self,
        store: Store,
        config: EngineConfig,
        *,
        engine_id: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.engine_id = engine_id or new_engine_id()
        self.transport = transport or make_transport(config)
        # The relay a sent message waits at (SMTP transports): its reply to the dot is
        # recorded with the message, so the relay agent can find it there.
        self._relay: str | None = getattr(self.transport, "relay", None)
        self._backlog = (RelayBacklog(store, self._relay, config.relay_backlog)
                         if config.relay_backlog and self._relay else None)
        self.started_at = store.now()
        self.held = 0  # messages claimed by this engine and not yet recorded
        self.sent_total = 0
        self.failed_total = 0
        self.acknowledged: dict[int, int] = {}
        self.note: str | None = None  # last connection problem, shown by status/console
        self.counters = EngineCounters()  # read by a metrics scrape (mailconsole.ops.metrics)
        # Told of what the operators' tools should hear about (mailconsole.ops.notify), as
        # (event, details); called on the engine's thread, so it must only queue.
        self.on_event: Callable[[str, dict[str, object]], None] | None = None
        # A problem of the process around the engine (a failing notification), for the heartbeat note.
        self.outside_note: Callable[[], str | None] | None = None
        self._store_trouble: str | None = None  # why store writes fail, until one succeeds again
        self._past_dot: set[int] = set()  # dot written, outcome not yet recorded
        # Claims no sender has taken yet (in the claimer's hand or the senders'
        # channel), and those of them a stop gave back to the queue: see _retract.
        self._untaken: dict[int, Claimed] = {}
        self._retracted: dict[int, Claimed] = {}
        self._record_all = False  # a stop was seen: the writer records all it has at once
        self._retractions: trio.MemorySendChannel[Outcome] | None = None  # to the writer, while it runs
        # Every outcome handed to the writer and not yet recorded: whatever ends the
        # engine, these are written before it exits (a delivered message stays sent).
        self._unrecorded: dict[int, Outcome] = {}
        # message id -> (mailing id, scope) while its transaction has not reached the
        # dot: a stop or a shutdown cuts it at once (nothing was accepted yet).
        self._cuttable: dict[int, tuple[int, trio.CancelScope]] = {}
        # message id -> (its transaction's scope, session) while it talks to a server:
        # one watchdog cuts those past their session's deadline (see _watchdog).
        self._watched: dict[int, tuple[trio.CancelScope, Session]] = {}
        self._timed_out: set[int] = set()
        self._revisions: dict[int, CompiledRevision | Unsendable] = {}
        self._signer = load_signer(config.dkim_key_file, config.dkim_selector, config.dkim_domain)  # ConfigError here
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=64)
        self._pacer = Pacer(config.rate) if config.rate else None
        self._outage = Outage()
        # Enough in hand to keep every sender busy between claims. With a rate cap,
        # about one second's worth at that rate (the pacer lets no more out in that
        # time), so "in flight" means what it says and a stop leaves little claimed.
        self._max_held = config.workers + 8 * config.batch
        if config.rate:
            self._max_held = min(self._max_held, max(1, math.ceil(config.rate)))
        self.gate: Gate | None = None
        self._reader: ControlReader | None = None
        self._shutdown: trio.Event | None = None
        self._claim_wake: trio.Event | None = None
        self._beat_wake: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._write_lock: trio.Lock | None = None
        # This engine's heartbeat row has two writers, the heartbeat and the ack writer,
        # on two connections: held by each while it writes, so a heartbeat never commits
        # an acknowledgement older than one the ack writer has just committed.
        self._row_lock: trio.Lock | None = None
        self._ack_wake = trio.Event()
        self._last_control: Control | None = None
        # The policy's windows over what the server answered (watch.py), and the
        # mailings this engine has judged past a threshold and holds back itself
        # until the store's pause is committed (then the gate holds them).
        self._watch = Watch(policy_store.Policy())
        self._judged: set[int] = set()
        self._background: trio.Nursery | None = None
        # Called on the engine's thread with each automatic pause or stop this
        # engine carried out (store/auto_pause.Trip): for metrics and notifications.
        self.trip_listeners: list[Callable[[auto_pause.Trip], None]] = []
        self.tripped_total = 0

    # -- public --------------------------------------------------------------

    def nudge(self) -> None:
        """Thread-safe: a stop/pause/delete was just committed; re-check the gate now."""
        if self.gate is not None:
            self.gate.nudge()

    def automatic_pause(self, account_id: int | None, details: dict[str, object]) -> None:
        """Count and announce a mailing paused by the engine itself (a policy).

        The caller has already committed the pause; `details` (mailing, why, the
        window's figures) go to the notification as they are.
        """
        pauses = self.counters.automatic_pauses
        pauses[account_id] = pauses.get(account_id, 0) + 1
        self._tell("automatic_pause", {"account_id": account_id, **details})

    def _tell(self, event: str, details: dict[str, object]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event, details)
            except Exception:  # a listener's fault is not the engine's: log it, go on sending
                log.exception("telling of %s failed", event)

    def request_stop(self) -> None:
        """Graceful shutdown (call from the engine's trio thread)."""
        if self._shutdown is not None:
            self._shutdown.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until request_stop(); returns with nothing of this engine left claimed."""
        cfg = self.config
        self._token = trio.lowlevel.current_trio_token()
        self._shutdown = trio.Event()
        self._claim_wake = trio.Event()
        self._beat_wake = trio.Event()
        self._write_lock = trio.Lock()
        self._row_lock = trio.Lock()
        reader = self._reader = await self._db(ControlReader, self.store)
        acker = await self._db(AckWriter, self.store)
        self._ack_wake = trio.Event()
        initial = await self._db(reader.read)
        self._fence = DotFence(self.store)
        self.gate = Gate(reader.read, initial, self._fence, self.counters.gate)
        self.gate.on_read = self._on_control
        self.acknowledged = dict(initial.generations)  # nothing claimed yet: all honoured
        self._watch.policy = await self._db(policy_store.get, self.store)
        await self._beat("running")
        to_senders, from_claimer = trio.open_memory_channel[Work](cfg.batch)
        to_writer, from_senders = trio.open_memory_channel[Outcome](math.inf)
        try:
            async with trio.open_nursery() as background:
                self._background = background
                background.start_soon(self.gate.run_reader, cfg.poll_interval)
                background.start_soon(self._heartbeat_loop)
                background.start_soon(self._ack_loop, acker)
                background.start_soon(self._maintenance_loop)
                background.start_soon(self._watchdog)
                background.start_soon(self._wakeup_loop)
                try:
                    async with trio.open_nursery() as pipeline:
                        pipeline.start_soon(self._writer, from_senders)
                        async with to_writer, from_claimer, self._retracting(to_writer.clone()):
                            async with trio.open_nursery() as senders:
                                senders.start_soon(self._claimer, to_senders)
                                sender = self._sender
                                if getattr(self.transport, "instant_dots", False) and self._pacer is None:
                                    sender = self._instant_sender
                                for _ in range(cfg.workers):
                                    senders.start_soon(sender, from_claimer.clone(), to_writer.clone())
                                task_status.started()
                                await self._shutdown.wait()
                                log.info("engine %s shutting down", self.engine_id)
                                self._claim_wake.set()
                                # Transactions before their dot are cut now: their messages go
                                # back as they were. One whose dot is written may wait for its
                                # reply for the grace, so that it is known to be sent.
                                self._cut(lambda mailing_id: True)
                                senders.cancel_scope.deadline = trio.current_time() + cfg.shutdown_grace
                finally:
                    # Also after a crash of a task: what this engine holds goes back now
                    # rather than when its leases expire.
                    with trio.CancelScope(shield=True):
                        await self._close_down()
                background.cancel_scope.cancel()
        finally:
            reader.close()
            acker.close()
            self._fence.close()

    async def _close_down(self) -> None:
        # The outcomes not yet recorded, however the engine ends: a message the server
        # accepted must not go back to the queue to be sent again.
        leftovers = dict(self._unrecorded)
        for mid in self._past_dot:  # cut after the dot: possibly delivered, so it counts as an attempt
            leftovers.setdefault(mid, Outcome(mid, 0, "retry", error="shutdown after end of data; may have been delivered",
                                              possibly_delivered=True))
        try:
            if leftovers:
                await self._record_leftovers(list(leftovers.values()))
            released = await self._write(queue.release_all, self.store, self.engine_id)
            if released:
                log.info("released %d claimed messages", released)
            self.held = 0
            await self._beat("stopped")
        except StoreError as exc:  # the leases expire instead
            log.error("could not release claimed messages: %s", exc)

    async def _record_leftovers(self, outcomes: list[Outcome]) -> None:
        """Record on the way out; if the batch cannot be (one bad outcome), each alone."""
        try:
            await self._write(queue.record, self.store, self.engine_id, outcomes, relay=self._relay)
            self._count(outcomes)
            return
        except StoreError:
            raise
        except Exception as exc:
            log.error("recording %d results failed (%s); recording them one by one", len(outcomes), exc)
        for o in outcomes:
            try:
                await self._write(queue.record, self.store, self.engine_id, [o], relay=self._relay)
            except StoreError:
                raise
            except Exception as exc:
                log.error("cannot record the result of message %d: %s", o.message_id, exc)
            else:
                self._count([o])

    # -- database access -----------------------------------------------------

    async def _db(self, fn: Callable, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        """A read (or a write that must not wait for this engine's own writes)."""
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def _write(self, fn: Callable, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        """A write transaction, one at a time per engine.

        SQLite has one write lock; when two of our own threads race for it, the
        loser sleeps in SQLite's busy handler for milliseconds. Queuing our writes
        here instead keeps claims and result batches flowing back to back.
        """
        async with self._write_lock:
            return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))

    def _on_control(self, snapshot: Control) -> None:
        honoured = self.gate.honoured() if self.gate else None
        if honoured is not None and honoured != self.acknowledged:
            log.debug("stop generations %s honoured at %.6f", honoured, time.time())
            self.acknowledged = honoured
            self._ack_wake.set()
        previous, self._last_control = self._last_control, snapshot
        if previous is not None and (
            snapshot.stopped_accounts != previous.stopped_accounts or snapshot.mailing_status != previous.mailing_status
        ):
            # A resume, a new or unpaused mailing: claim now, not at the next idle poll.
            self._claim_wake.set()  # type: ignore[union-attr]
            # A stop, pause or delete: transactions of its mailings that have not reached
            # their dot end now rather than when a slow server lets them reach the gate.
            if self.gate is not None and self._cuttable:
                self._cut(lambda mailing_id: not self.gate.may_start(mailing_id))  # type: ignore[union-attr]
            if snapshot.stopped_accounts - previous.stopped_accounts:
                self._retract(snapshot, snapshot.stopped_accounts - previous.stopped_accounts)

    # -- a stop's claims -------------------------------------------------------

    def _retract(self, snapshot: Control, stopped: frozenset[int]) -> None:
        """A stop: what this engine holds of its accounts is in the store at once.

        The relay agent honours a stop only once no live engine holds a claim of
        the account (store/relays.in_flight: the relay may have taken a claimed
        message whose queue id is not recorded yet). So every claim of the stopped
        accounts that no sender has taken is given back now, and the writer's next
        transaction records that with everything else it has (_gather: uncapped
        once), rather than the senders turning them back and the writer recording
        them one result batch after another.

        Sound because a message passes the gate only in the sender that took it:
        an untaken claim cannot have reached a dot, and a retracted one is dropped
        untouched when a sender takes it (matched by identity: a later claim of the
        same message is another object). What senders took (two each at most) and
        what passed its dot are recorded with their outcomes, as before.
        """
        self._record_all = True
        to_writer = self._retractions
        if to_writer is None:
            return
        ids = [mid for mid, c in self._untaken.items() if snapshot.account_of(c.mailing_id) in stopped]
        for mid in ids:
            c = self._retracted[mid] = self._untaken.pop(mid)
            self._emit(to_writer, Outcome(mid, c.mailing_id, "release"))
        if ids:
            log.debug("retracted %d claims of a stopped account at %.6f", len(ids), time.time())

    @asynccontextmanager
    async def _retracting(self, to_writer: trio.MemorySendChannel[Outcome]) -> AsyncIterator[None]:
        """While the writer runs: where _retract hands the releases."""
        async with to_writer:
            self._retractions = to_writer
            try:
                yield
            finally:
                self._retractions = None

    def _cut(self, which: Callable[[int], bool]) -> None:
        """Cancel the transactions before their dot whose mailing `which` names."""
        for mailing_id, scope in self._cuttable.values():
            if which(mailing_id):
                scope.cancel()

    # -- claimer -------------------------------------------------------------

    async def _claimer(self, to_senders: trio.MemorySendChannel[Work]) -> None:
        cfg = self.config
        assert self._shutdown is not None and self._claim_wake is not None
        async with to_senders:
            while not self._shutdown.is_set():
                room = min(cfg.batch, self._max_held - self.held)
                if self._outage.down:
                    room = 0  # what is held already waits for the server; claim no more meanwhile
                if room > 0 and self._backlog is not None:
                    allowed = await self._backlog.room(self.held)  # held read before the count: see room()
                    if allowed is not None:
                        room = min(room, allowed)
                claimed: list[Claimed] = []
                if room > 0:
                    try:
                        claimed = await self._write(queue.claim, self.store, self.engine_id, room, cfg.lease_seconds)
                    except StoreError as exc:
                        if self.note != str(exc):  # once per cause, not at every idle poll
                            log.warning("claim failed: %s", exc)
                        self._store_failed(exc)
                    else:
                        self._store_recovered()
                if not claimed:
                    self._claim_wake = trio.Event()
                    with trio.move_on_after(cfg.idle_claim_interval if room > 0 else 0.05):
                        await self._claim_wake.wait()
                    continue
                self.held += len(claimed)
                self._untaken.update((c.id, c) for c in claimed)
                if not await self._revisions_for(claimed):
                    return  # shutting down: release_all puts the claimed messages back
                for c in claimed:
                    item = Work(c, self._revisions.get(c.mailing_id))
                    try:  # no scheduling round per message while the channel has room
                        to_senders.send_nowait(item)
                    except trio.WouldBlock:
                        await to_senders.send(item)

    async def _revisions_for(self, claimed: list[Claimed]) -> bool:
        """The claimed messages' revisions, tried again while the store cannot be read (a
        server restarting right after the claim); False if the engine shuts down meanwhile."""
        assert self._shutdown is not None
        while True:
            try:
                await self._refresh_revisions({c.mailing_id for c in claimed})
                return True
            except StoreError as exc:
                log.warning("reading the templates of claimed messages failed, retrying: %s", exc)
                self._store_failed(exc)
            with trio.move_on_after(0.2):
                await self._shutdown.wait()
            if self._shutdown.is_set():
                return False

    async def _refresh_revisions(self, mailing_ids: set[int]) -> None:
        """Newest revision of each mailing, at claim time: a corrected template is used at once."""
        newest = await self._db(queue.newest_revisions, self.store, mailing_ids)
        for mid, row in newest.items():
            current = self._revisions.get(mid)
            if current is None or current.revision_id != row[0]:
                # In a thread: a big template takes up to a second to compile, and on the
                # loop that second would hold up heartbeats, the gate and acknowledgements.
                # The GIL still passes between the two every few ms; abandoned on shutdown.
                self._revisions[mid] = await trio.to_thread.run_sync(
                    self._compile, mid, RevisionData(*row), abandon_on_cancel=True
                )

    def _compile(self, mailing_id: int, rev: RevisionData) -> CompiledRevision | Unsendable:
        """The revision ready to build messages, or why none of its messages can be."""
        problem = sender_problem(rev.sender) or list_unsubscribe_problem(rev.list_unsubscribe)
        if problem is not None:
            log.warning("mailing %d cannot be sent as stored: %s", mailing_id, problem)
            return Unsendable(rev.id, ADDRESS, problem + "; not sent")
        try:
            return CompiledRevision(mailing_id, rev, domain=self.config.message_domain, signer=self._signer)
        except Exception as exc:  # a template the store holds but that does not compile
            log.warning("mailing %d: its template does not compile: %s", mailing_id, exc)
            return Unsendable(rev.id, TEMPLATE, f"template cannot be compiled: {exc.__class__.__name__}: {exc}")

    # -- senders -------------------------------------------------------------

    async def _sender(self, work: trio.MemoryReceiveChannel[Work], results: trio.MemorySendChannel[Outcome]) -> None:
        """One sender task: one reused connection, messages one after another.

        When the next message is already waiting, its envelope (MAIL, RCPT, DATA)
        is pipelined behind the current message's dot: one network round per
        message instead of two. Only the dot commits a message, so an envelope
        sent early changes nothing for the gate; if that next message is then
        turned back, the connection is dropped (the server is in DATA mode).
        """
        session: Session | None = None
        ahead: Prepared | None = None
        try:
            async with work, results:
                while True:
                    # One cut scope for message after message, not one each (entering
                    # and leaving a scope is ~6 % of a message's CPU): a stop, a shutdown
                    # or the watchdog cancels it only while a message is registered in
                    # it (_deliver), and a cancelled scope is left for a new one at once.
                    inflight: Prepared | None = None
                    with trio.CancelScope() as cut:
                        while not cut.cancel_called:
                            current, ahead = ahead, None
                            if current is None:
                                current = await self._prepare_next(work, results, wait=True)
                                if current is None:
                                    return
                            if self._pacer is None and session is not None and not session.closed:
                                ahead = await self._prepare_next(work, results, wait=False)
                            inflight = current
                            outcome, session = await self._deliver(current, session, ahead, cut)
                            inflight = None
                            self._emit(results, outcome)
                    if inflight is not None:  # cut before its dot (or timed out)
                        work_item = inflight[0]
                        assert isinstance(work_item.revision, CompiledRevision)
                        outcome, session = await self._after_cut(work_item.claimed, work_item.revision.revision_id, session)
                        self._emit(results, outcome)
        finally:
            if session is not None and not session.closed:
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await session.close()

    async def _instant_sender(
        self, work: trio.MemoryReceiveChannel[Work], results: trio.MemorySendChannel[Outcome]
    ) -> None:
        """A sender task for a transport whose dot is instantaneous (null:).

        It builds every message waiting (up to INSTANT_BATCH), then asks the gate
        once: all of them arrived before that read started, and their "dots" all
        happen at once right after the answer, with no await in between, so the
        gate's promise holds for each of them as it does for a single message.
        """
        async with work, results:
            while True:
                first = await self._prepare_next(work, results, wait=True)
                if first is None:
                    break
                batch = [first]
                while len(batch) < INSTANT_BATCH:
                    more = await self._prepare_next(work, results, wait=False)
                    if more is None:
                        break
                    batch.append(more)
                assert self.gate is not None
                seq, allowed = await self.gate.passage_many([w.claimed.mailing_id for w, _ in batch])
                if self.gate.expired(seq):  # descheduled past the deadline since the read: refuse all
                    self.gate.passed(seq, sum(allowed))
                    for w, _ in batch:
                        self._emit(results, Outcome(w.claimed.id, w.claimed.mailing_id, "release"))
                    continue
                try:
                    for (w, _), ok in zip(batch, allowed):
                        c = w.claimed
                        if ok and c.mailing_id not in self._judged and not self._suppressed_since_claim(c):
                            self._emit(results, Outcome(c.id, c.mailing_id, "sent", w.revision.revision_id))  # type: ignore[union-attr]
                            self._observe(c, OK)
                        else:
                            self._emit(results, Outcome(c.id, c.mailing_id, "release"))
                finally:
                    self.gate.passed(seq, sum(allowed))

    async def _prepare_next(
        self, source: trio.MemoryReceiveChannel[Work], results: trio.MemorySendChannel[Outcome], *, wait: bool
    ) -> Prepared | None:
        """The next message that may be sent, built; others go straight to the results."""
        while True:
            try:
                work = await source.receive() if wait else source.receive_nowait()
            except (trio.EndOfChannel, trio.WouldBlock):
                return None
            c = work.claimed
            if self._retracted and self._retracted.get(c.id) is c:
                del self._retracted[c.id]  # a stop gave it back to the queue (_retract): not ours any more
                continue
            self._untaken.pop(c.id, None)
            if self._turned_back(c):
                self._emit(results, Outcome(c.id, c.mailing_id, "release"))  # never reached a server
                continue
            rev = work.revision
            if rev is None:
                self._emit(results, self._failure(c, None, "mailing has no template revision", TEMPLATE))
                continue
            if isinstance(rev, Unsendable):
                self._emit(results, self._failure(c, rev.revision_id, rev.reason, rev.kind))
                continue
            problem = address_problem("recipient", c.email)
            if problem is not None:
                self._emit(results, self._failure(c, rev.revision_id, problem + "; not sent", ADDRESS))
                continue
            try:
                return work, rev.build(c.id, c.email, c.fields)
            except MergeError as exc:
                self._emit(results, self._failure(c, rev.revision_id, str(exc), exc.kind))
                # A failed build may have used its whole render budget: let the heartbeat,
                # the gate and the writer run before the next one (receive_nowait never yields).
                await trio.lowlevel.checkpoint()
            except Exception as exc:  # anything else this one message's data provokes: it alone fails
                log.debug("message %d cannot be built", c.id, exc_info=True)
                reason = f"message cannot be built: {exc.__class__.__name__}: {exc}"
                self._emit(results, self._failure(c, rev.revision_id, reason, TEMPLATE))
                await trio.lowlevel.checkpoint()

    def _emit(self, results: trio.MemorySendChannel[Outcome], outcome: Outcome) -> None:
        """Hand an outcome to the writer (unbounded: never blocks, no scheduling round)."""
        self._unrecorded[outcome.message_id] = outcome
        results.send_nowait(outcome)

    def _turned_back(self, c: Claimed) -> bool:
        assert self.gate is not None and self._shutdown is not None
        return self._shutdown.is_set() or not self.gate.may_start(c.mailing_id)

    async def _deliver(
        self, current: Prepared, session: Session | None, ahead: Prepared | None, cut: trio.CancelScope,
    ) -> tuple[Outcome, Session | None]:
        """Send one message inside the sender's `cut` scope; a cancellation of that scope
        leaves through here (the caller then calls `_after_cut`)."""
        work, built = current
        c = work.claimed
        assert isinstance(work.revision, CompiledRevision)
        rid = work.revision.revision_id
        then = (ahead[0].claimed.id, ahead[1].envelope_from, ahead[1].recipient) if ahead is not None else None
        self._cuttable[c.id] = (c.mailing_id, cut)
        try:
            if self._pacer is not None:
                await self._pacer.wait()
            if not self._turned_back(c):
                if session is None or session.closed:
                    session = await self._connect(c)
                if session is not None:  # else stopped (or shutting down) while the server was unreachable
                    self._watched[c.id] = (cut, session)
                    return await self._transmit(c, rid, built, session, then), session
        except Exception as exc:  # not the server's answer but a fault here: this message only
            log.error("sending message %d failed: %s: %s", c.id, exc.__class__.__name__, exc)
            log.debug("sending message %d failed", c.id, exc_info=True)
            if session is not None:
                await session.abort()
            outcome = self._retry(c, rid, f"internal error: {exc.__class__.__name__}: {exc}")
            return outcome._replace(possibly_delivered=c.id in self._past_dot), session
        finally:
            self._cuttable.pop(c.id, None)
            self._watched.pop(c.id, None)
        return await self._after_cut(c, rid, session)

    async def _after_cut(self, c: Claimed, rid: int, session: Session | None) -> tuple[Outcome, Session | None]:
        """The outcome of a message whose transaction was cut, or turned back before it began."""
        if c.id in self._timed_out:  # the server did not answer in time (the session is dropped)
            self._timed_out.discard(c.id)
            return self._smtp_outcome(c, rid, SMTPError("timeout: the server did not answer in time",
                                                        connection_lost=True)), session
        # Turned back, or cut by a stop or a shutdown before its dot: back to the queue as it was.
        if session is not None and session.announced == c.id:
            await session.drop_announced()
        return Outcome(c.id, c.mailing_id, "release"), session

    async def _transmit(self, c: Claimed, rid: int, built: Built, session: Session, then: Envelope | None) -> Outcome:
        try:
            reply = await session.send(built, partial(self._gate_check, c), key=c.id, then=then, watched=True)
        except GateClosed:
            return Outcome(c.id, c.mailing_id, "release")
        except SMTPError as exc:
            self.counters.reply(exc.code)
            return self._smtp_outcome(c, rid, exc)
        self.counters.reply(250)
        self._observe(c, OK)
        return Outcome(c.id, c.mailing_id, "sent", rid, relay_reply=reply if self._relay else None)

    def _smtp_outcome(self, c: Claimed, rid: int, exc: SMTPError) -> Outcome:
        # No reply after our dot: the server may have taken the message, so a
        # later send can duplicate it; the store counts it (promise 3).
        twice = exc.connection_lost and c.id in self._past_dot
        if exc.connection_lost:
            self.note = str(exc)
            log.warning("connection problem: %s", exc)
        elif exc.code >= 400:  # the server's verdict on this message (not a broken connection)
            self._observe(c, PERMANENT if exc.code >= 500 else DEFERRED, str(exc))
        if exc.temporary:
            return self._retry(c, rid, str(exc))._replace(possibly_delivered=twice)
        return self._failure(c, rid, str(exc), SMTP)._replace(possibly_delivered=twice)

    async def _watchdog(self) -> None:
        """Cut every transaction whose session's deadline has passed, WATCH_TICK late at most.

        One task for all of them instead of a cancel scope with a deadline per
        transaction: entering, moving and leaving that scope cost ~10 us a message,
        and trio keeps each deadline in a heap. Timeouts are tens of seconds, so a
        check every WATCH_TICK changes nothing a server can notice.
        """
        while True:
            await trio.sleep(WATCH_TICK)
            now = trio.current_time()
            for mid, (scope, session) in list(self._watched.items()):
                if session.deadline <= now:
                    self._timed_out.add(mid)
                    scope.cancel()

    async def _connect(self, c: Claimed) -> Session | None:
        """A new connection, for sending c; None if c must go back to the queue first.

        While the server cannot be reached, c stays claimed (its lease renewed) and
        its attempts are not used up: see engine/outage.py. Every sender waits out
        the same back-off, and checks meanwhile whether a stop turned c back.
        """
        outage = self._outage
        while True:
            while trio.current_time() < outage.retry_at:
                if self._turned_back(c):
                    return None
                await trio.sleep(min(CHECK_EVERY, outage.retry_at - trio.current_time()))
            if self._turned_back(c):
                return None
            try:
                session = await self.transport.open()
            except SMTPError as exc:
                outage.failed(str(exc))
                if outage.failures == 1:
                    self._tell("engine_cannot_send", {"why": str(exc), "held": max(self.held, 0)})
                if outage.failures == 1 or outage.failures % 10 == 0:
                    log.warning("cannot use the mail server: %s", outage.note())
                self.note = outage.note()
                self._beat_wake.set()  # type: ignore[union-attr]  # show it now, not at the next beat
                continue
            if outage.down:
                log.warning("the mail server answers again after %d failed tries", outage.failures)
                self._tell("engine_can_send", {"failed_tries": outage.failures, "held": max(self.held, 0)})
                outage.recovered()
                self._claim_wake.set()  # type: ignore[union-attr]
            if self.note != self._store_trouble:
                self.note = None
            return session

    async def _gate_check(self, c: Claimed) -> Callable[[], None] | None:
        assert self.gate is not None
        if c.mailing_id in self._judged:  # past the policy's threshold: its pause is being committed
            return None
        seq = await self.gate.passage(c.mailing_id)
        if seq is None:
            return None
        if self._suppressed_since_claim(c):
            self.gate.passed(seq)
            return None
        # From here on the transaction is no longer cut by a stop or shutdown: the dot follows.
        entry = self._cuttable.pop(c.id, None)
        if (entry is not None and entry[1].cancel_called) or self.gate.expired(seq):  # cut, or too late for the dot
            self.gate.passed(seq)
            return None
        self._past_dot.add(c.id)
        return partial(self.gate.passed, seq)

    def _suppressed_since_claim(self, c: Claimed) -> bool:
        """Whether c's address was suppressed after its claim; checked with the gate's fresh read.

        Only when the gate's read shows a newer suppression mark than the claim
        checked (store/suppressions.py): one integer comparison otherwise. The
        message then goes back to the queue, where the next claim moves it to
        'suppressed'. A failed lookup also turns it back: fail closed.
        """
        assert self.gate is not None and self._reader is not None
        snap = self.gate.snapshot
        if snap.suppressions <= c.suppressions_seen:
            return False
        account = snap.account_of(c.mailing_id)
        try:
            return account is None or self._reader.suppressed(account, c.email)
        except Exception as exc:
            log.warning("cannot check message %d against the suppressions, turning it back: %s", c.id, exc)
            return True

    # -- the policy: automatic pause and stop --------------------------------

    def _observe(self, c: Claimed, kind: int, reply: str | None = None) -> None:
        """One answer of the server into the policy's windows: constant time, no store access."""
        assert self.gate is not None
        verdict = self._watch.add(c.mailing_id, self.gate.snapshot.account_of(c.mailing_id), kind, reply)
        if verdict is not None:
            self._carry_out(verdict)

    def _carry_out(self, verdict: Verdict) -> None:
        """Past a threshold: hold the mailing back here at once, commit the pause (or stop) beside."""
        if verdict.scope == "mailing":
            self._judged.add(verdict.key)
            self._cut(lambda mailing_id: mailing_id == verdict.key)
        log.warning("%s %d past the policy's %s threshold: %s", verdict.scope, verdict.key, verdict.rule,
                    {k: v for k, v in verdict.figures.items() if k != "top_replies"})
        assert self._background is not None
        self._background.start_soon(self._commit_verdict, verdict)

    async def _commit_verdict(self, verdict: Verdict) -> None:
        # Not behind this engine's own writes (_db): the pause waits for the write
        # lock as an operator's does, and for the dot fence.
        commit = auto_pause.pause_mailing if verdict.scope == "mailing" else auto_pause.stop_account
        try:
            trip = await self._db(commit, self.store, verdict.key, verdict.rule, verdict.figures, self.engine_id)
        except StoreError as exc:
            log.error("could not carry out the automatic %s of %s %d: %s",
                      "pause" if verdict.scope == "mailing" else "stop", verdict.scope, verdict.key, exc)
            trip = None
        finally:
            self.nudge()  # the gate reads the committed pause or stop now; then it holds the mailing
            if verdict.scope == "mailing":
                self._judged.discard(verdict.key)
        if trip is None:
            return  # another engine or an operator was first, or it finished: recorded once, elsewhere
        self.tripped_total += 1
        log.warning("%s", trip.summary())
        if verdict.scope == "account":
            account_id: int | None = verdict.key
        else:
            known = self._last_control.mailing_status.get(verdict.key) if self._last_control else None
            account_id = known[1] if known else None
        self.automatic_pause(account_id, auto_pause.trip_details(trip))  # the metric and the notification hook
        for listener in self.trip_listeners:
            try:
                listener(trip)
            except Exception:  # a listener's fault must not touch sending or the stop
                log.exception("automatic pause listener failed")

    def _failure(self, c: Claimed, rid: int | None, error: str, kind: str) -> Outcome:
        return Outcome(c.id, c.mailing_id, "failed", rid, error=error[:1000], fail_kind=kind)

    def _retry(self, c: Claimed, rid: int | None, error: str) -> Outcome:
        cfg = self.config
        if c.attempts >= cfg.max_attempts:
            return self._failure(c, rid, f"{error} (gave up after {c.attempts} attempts)", SMTP)
        delay = min(cfg.retry_max, cfg.retry_base * 2 ** (c.attempts - 1)) * random.uniform(0.5, 1.5)
        return Outcome(c.id, c.mailing_id, "retry", rid, error=error[:1000], retry_at=self.store.now() + delay)

    # -- result writer -------------------------------------------------------

    async def _writer(self, results: trio.MemoryReceiveChannel[Outcome]) -> None:
        """Record outcomes in batches: one transaction for everything that finished meanwhile."""
        pending: list[Outcome] = []
        closed = False
        failing_since: float | None = None
        async with results:
            while not (closed and not pending):
                if not closed:
                    closed = await self._gather(results, pending)
                if not pending:
                    continue
                try:
                    with trio.CancelScope(shield=True):
                        await self._write(queue.record, self.store, self.engine_id, pending, relay=self._relay)
                except StoreError as exc:  # keep the outcomes and try again
                    self._store_failed(exc)
                    failing_since = failing_since or trio.current_time()
                    if self._shutdown.is_set() and trio.current_time() - failing_since > self.config.shutdown_grace:  # type: ignore[union-attr]
                        # Shutting down on a store that takes no writes: waiting would
                        # never end. Unrecorded messages stay claimed; their leases
                        # expire and they are sent again, counted as possible duplicates.
                        log.error("giving up recording %d results on shutdown: %s", len(pending), exc)
                        pending = []
                        continue
                    log.warning("recording results failed, retrying: %s", exc)
                    await trio.sleep(0.5)
                    continue
                failing_since = None
                self._store_recovered()
                self._count(pending)
                pending = []

    def _store_failed(self, exc: StoreError) -> None:
        """A write failed: the heartbeat note says why (once it can be written again)."""
        self.note = self._store_trouble = str(exc)

    def _store_recovered(self) -> None:
        """A claim or a result batch was written: the store fault is over."""
        if self._store_trouble is None:
            return
        log.warning("store writable again")
        if self.note == self._store_trouble:
            self.note = None
        self._store_trouble = None

    async def _gather(self, results: trio.MemoryReceiveChannel[Outcome], pending: list[Outcome]) -> bool:
        """Add outcomes to `pending`: wait for one, then result_flush for the rest of a batch.

        Larger batches cost less per message; the claimer keeps enough messages in
        hand that waiting a few milliseconds starves no sender. True at end of channel.
        """
        try:
            if not pending:
                pending.append(await results.receive())
            # Sleep, then take what arrived: one wake-up per batch, not per outcome.
            # Capped, so a record never holds the write lock long (a stop waits for it).
            # With a full batch already waiting the sleep would only cap the rate.
            # After a stop, everything at once: the relay's stop waits for it (_retract).
            if not self._record_all and results.statistics().current_buffer_used + len(pending) < self.config.batch:
                await trio.sleep(self.config.result_flush)
            limit, self._record_all = (math.inf if self._record_all else self.config.batch), False
            while len(pending) < limit:
                pending.append(results.receive_nowait())
        except trio.WouldBlock:
            return False
        except trio.EndOfChannel:
            return True

    def _count(self, outcomes: list[Outcome]) -> None:
        self.counters.count(outcomes, self.gate.snapshot if self.gate is not None else None)
        for o in outcomes:
            if o.kind == "sent":
                self.sent_total += 1
            elif o.kind == "failed":
                self.failed_total += 1
            self._past_dot.discard(o.message_id)
            self._unrecorded.pop(o.message_id, None)
        self.held -= len(outcomes)
        if self._claim_wake is not None:
            self._claim_wake.set()

    # -- heartbeat, leases, maintenance --------------------------------------

    def _rates(self) -> tuple[float, float]:
        now = time.monotonic()
        self._samples.append((now, self.sent_total, self.failed_total))
        while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
            self._samples.popleft()
        t0, s0, f0 = self._samples[0]
        span = now - t0
        if span <= 0:
            return 0.0, 0.0
        return (self.sent_total - s0) / span, (self.failed_total - f0) / span

    async def _beat(self, state: str) -> dict[int, int]:
        """Write the heartbeat row; returns the acknowledgement it carried."""
        sent_rate, failed_rate = self._rates()
        async with self._write_lock, self._row_lock:  # type: ignore[union-attr]
            # Read under the row's lock: the newest, never one the ack writer has passed.
            acknowledged = self.acknowledged
            await trio.to_thread.run_sync(partial(
                engine_rows.beat, self.store, self.engine_id,
                host=socket.gethostname(), pid=os.getpid(), workers=self.config.workers,
                transport=self.config.masked_transport, started_at=self.started_at, state=state,
                in_flight=max(self.held, 0) if state != "stopped" else 0,
                sent_rate=sent_rate, failed_rate=failed_rate,
                sent_total=self.sent_total, failed_total=self.failed_total,
                acknowledged=acknowledged,
                note=self._heartbeat_note(),
            ))
        return acknowledged

    def _heartbeat_note(self) -> str | None:
        # While the server is unreachable: the countdown to the next try, as of now.
        own = self._outage.note() if self._outage.down else self.note or (self._backlog.note if self._backlog else None)
        outside = self.outside_note() if self.outside_note is not None else None
        return "; ".join(n for n in (own, outside) if n) or None

    async def _ack_loop(self, acker: AckWriter) -> None:
        """Write each new acknowledgement at once, on its own connection (see AckWriter)."""
        while True:
            await self._ack_wake.wait()
            self._ack_wake = trio.Event()
            try:
                async with self._row_lock:  # type: ignore[union-attr]
                    acknowledged = self.acknowledged
                    await trio.to_thread.run_sync(acker.write, self.engine_id, acknowledged, max(self.held, 0))
                log.debug("acknowledged %s at %.6f", acknowledged, time.time())
            except StoreError as exc:
                log.warning("acknowledgement failed, the heartbeat will carry it: %s", exc)
                self._beat_wake.set()  # type: ignore[union-attr]

    async def _heartbeat_loop(self) -> None:
        cfg = self.config
        last_renewal = trio.current_time()
        while True:
            self._beat_wake = trio.Event()
            try:
                acknowledged = await self._beat("stopping" if self._shutdown.is_set() else "running")  # type: ignore[union-attr]
                log.debug("heartbeat acknowledging %s written at %.6f", acknowledged, time.time())
                if trio.current_time() - last_renewal >= cfg.lease_seconds / 3:
                    last_renewal = trio.current_time()
                    await self._write(queue.renew_leases, self.store, self.engine_id, cfg.lease_seconds)
            except StoreError as exc:
                self._store_failed(exc)
                log.warning("heartbeat failed: %s", exc)
            with trio.move_on_after(cfg.heartbeat_interval):
                await self._beat_wake.wait()

    async def _wakeup_loop(self) -> None:
        """Hints that the store changed (a stop, new work: PostgreSQL's NOTIFY), where the
        store has them: the stop state is read and a claim made at once, not at the next
        poll. Only hints: the polls go on as without them, so a lost one costs a poll."""
        listener = await self._db(self.store.backend.listener)
        if listener is None:
            return
        try:
            while True:
                # Not abandoned on cancel: the listener is closed only once its thread is back.
                hints = await trio.to_thread.run_sync(listener.wait, WAKEUP_WAIT)
                if hints:
                    log.debug("woken by %s", ", ".join(h.what for h in hints))
                    self.nudge()
                    self._claim_wake.set()  # type: ignore[union-attr]
        finally:
            listener.close()

    async def _maintenance_loop(self) -> None:
        while True:
            try:
                promoted = await self._write(queue.promote_due, self.store)
                recovered = await self._write(queue.expire_leases, self.store)
                if recovered:
                    log.warning("took back %d messages from expired leases (possible duplicates)", recovered)
                await self._write(mailing_store.purge_deleted, self.store, max_batches=1)
                self._watch.policy = await self._db(policy_store.get, self.store)  # a `policy set` applies here
                if promoted or recovered:
                    self._claim_wake.set()  # type: ignore[union-attr]
            except StoreError as exc:
                log.warning("maintenance failed: %s", exc)
            await trio.sleep(self.config.maintenance_interval)
