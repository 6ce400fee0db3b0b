"""The relay agent's loop: keep the relay's queue in step with the stop.

    every POLL (5 ms): read the stop state (the gate's ~10 µs read, intents too)
         │ changed, or something is held, or a second has passed
         ▼
    reconcile: messages at the relay whose state there differs from what the
         stop wants (store/relays.to_act_on) ──► hold / release / delete
         │                                         by queue id (RelayQueue)
         ▼
    record what the relay confirmed; acknowledge each stop generation
    follow the relay's log: delivered / deferred / bounced per message
    heartbeat (like an engine): counts, acknowledgements, the current problem

Nudged, not only polled: a stop's commit is seen at the next 5 ms read of the
store (no other process has to tell the agent), so the hold follows the
commit within milliseconds; nothing else runs that often.

Nothing is recorded that the relay did not confirm: a hold that the relay did
not report (the id gone, or already held) is checked against its queue listing
before anything is written; an id that is in neither the queue nor the log yet
waits (GONE_AFTER) for its outcome before it is marked lost. When the store
cannot be read, nothing is done at the relay; when it cannot be written, what
the relay did is kept and written once it can.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..store import Store, StoreError
from ..store import engines as engine_rows
from ..store import auto_pause, relays
from ..store import policy as policy_store
from ..store.accounts import DAY, DEFAULT_MAX_AGE_DAYS
from ..store.gate_io import ControlReader
from ..store.mailings import DELETED
from ..store.queue import Control
from ..store.relays import AtRelay, Change, StopAck
from ..watch import BOUNCED, OK, Verdict, Watch
from .interface import Outcome, RelayError, RelayQueue

log = logging.getLogger("mailconsole.relay")

POLL = 0.005  # how often the stop state is read
HELD_RECHECK = 0.02  # while something should be held: look for newly recorded messages this often
FULL_RECHECK = 1.0  # otherwise, at least this often
GONE_AFTER = 30.0  # an id neither in the queue nor in the log for this long is lost
UNMATCHED_FOR = 60.0  # a logged outcome whose message is not recorded (yet) is retried this long
RELAY_RETRY = 0.5  # after a failed call to the relay, wait this long before the next
# The loop's writes wait this long for the write lock, then try again at the next
# round: a store that takes no writes must not keep the agent from holding.
WRITE_WAIT = 0.05
WRITE_TROUBLE_AFTER = 1.0  # failing writes are shown once they have failed this long
# A stop not honoured because engines still have its messages in flight says so
# in the note once that has lasted this long (a result batch takes ~0.1-0.3 s).
WAITING_SHOWN_AFTER = 1.0
EVENT_SHOWN_FOR = 60.0  # a relay restart or a log rotation stays in the note this long
POLICY_EVERY = 2.0  # the store's policy (bounce thresholds, suppress_bounces) is re-read this often
# The agent's scheduling priority (nice) as root: its hold races the relay's own
# delivery processes for the CPU, and on a busy host a hold of ~1,500 ids took
# 0.4-0.9 s at the default priority against ~0.1 s at this one. Its polling is light.
PRIORITY = -10
# While a new stop waits to be honoured, rounds follow each other with nothing else
# between: the log's outcomes and a due heartbeat wait (at most this long, seconds).
URGENT_FOR = 1.0
# The problems that leave the relay unable to hold, release or delete what it should:
# each one's start is a notification (a relay restart noted, ids lost, are not).
CANNOT_HOLD = frozenset({"relay", "relay-down", "store-read", "store-write", "log", "internal"})


def _raise_priority() -> None:
    """PRIORITY for the calling thread (Linux: the agent's loop), where allowed (root)."""
    if os.geteuid() != 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(os.getpriority(os.PRIO_PROCESS, 0), PRIORITY))
    except OSError as exc:
        log.warning("cannot raise the agent's priority: %s", exc)


def new_agent_id() -> str:
    return f"relay-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class _Stop:
    """The current stop of one account, as this agent has acted on it."""

    generation: int
    noticed: float  # store time the agent first saw it
    acked_at: float | None = None
    waiting_since: float = 0.0  # monotonic: since when engines keep it from being honoured
    counted: bool = False  # its counts below were read from the store
    in_delivery: int = 0  # held while the relay was delivering them
    done_while_held: int = 0  # of those, finished since (no longer on hold at the relay)
    delivered_after: int = 0
    bounced_after: int = 0


class Agent:
    def __init__(
        self, store: Store, queue: RelayQueue, *, relay: str | None = None, agent_id: str | None = None,
        kind: str = "postfix", poll: float = POLL, heartbeat_interval: float = 1.0,
        max_age_days: float = DEFAULT_MAX_AGE_DAYS, gone_after: float = GONE_AFTER,
    ) -> None:
        self.store = store
        self.queue = queue
        self.relay = relay
        self.agent_id = agent_id or new_agent_id()
        self.kind = kind
        self.poll = poll
        self.heartbeat_interval = heartbeat_interval
        self.max_age = max_age_days * DAY
        self.gone_after = gone_after
        self.started_at = store.now()
        self.counts: dict[str, int] = {k: 0 for k in
                                       ("held", "released", "deleted", "delivered", "bounced", "deferred", "expired", "lost")}
        self.note: str | None = None
        self.queue_size: int | None = None  # ours at the relay, as of the last heartbeat
        # Told when a problem starts (relay_cannot_hold) and when the last one ends
        # (relay_can_hold), as (event, details); on the agent's thread, so it must only queue.
        self.on_event: Callable[[str, dict[str, object]], None] | None = None
        self._problems: dict[str, str] = {}  # source -> current problem; the note joins them
        self._reader: ControlReader | None = None
        self._last: tuple | None = None
        self._control: Control | None = None
        self._stops: dict[int, _Stop] = {}
        self._live: list[engine_rows.EngineInfo] = []  # live engines as of the last _in_flight
        self._missing: dict[str, float] = {}  # queue id -> monotonic time first not found at the relay
        self._unmatched: dict[str, tuple[Outcome, float]] = {}
        self._unwritten: list[Change] = []  # confirmed by the relay, not yet in the store
        self._next_reconcile = 0.0
        self._relay_retry_at = 0.0
        self._next_beat = 0.0
        self._beat_now = False
        self._event_until = 0.0
        self._failure: RelayError | None = None  # the relay's failure in the current round
        self._unresolved: set[int] = set()  # accounts with something the relay neither held nor lost
        self._was_down = False
        self._failing_since = 0.0
        self.stopping = threading.Event()
        # The policy's windows over what the relay finally did (watch.py): bounces
        # past a threshold pause the mailing (or stop the account) as the engine does.
        self._watch = Watch(policy_store.Policy())
        self._next_policy = 0.0
        # Called (on a short-lived thread) with each automatic pause or stop this agent carried out.
        self.trip_listeners: list[Callable[[auto_pause.Trip], None]] = []
        self.tripped_total = 0

    # -- the loop ------------------------------------------------------------

    def run(self, on_ready: Callable[["Agent"], None] | None = None) -> None:
        """Until `stopping` is set (SIGTERM/SIGINT in the command); heartbeats 'stopped' at the end."""
        _raise_priority()
        self._beat("running")
        if on_ready is not None:
            on_ready(self)
        try:
            while not self.stopping.is_set():
                try:
                    self.tick()
                except Exception as exc:  # a bug must not end the agent in the middle of a stop
                    log.exception("relay agent round failed")
                    self._set_problem("internal", f"internal error: {exc.__class__.__name__}: {exc}")
                    self.stopping.wait(RELAY_RETRY)
                else:
                    self._set_problem("internal", None)
                self.stopping.wait(self.poll)
        finally:
            try:
                self._beat("stopped")
            except StoreError as exc:
                log.warning("last heartbeat failed: %s", exc)
            if self._reader is not None:
                self._reader.close()

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_policy:
            self._next_policy = now + POLICY_EVERY
            try:
                self._watch.policy = policy_store.get(self.store)
            except StoreError:
                pass  # the one read before still applies
        control = self._read_control()
        if control is not None:
            wanted = (control.stopped_accounts, tuple(sorted(control.generations.items())),
                      tuple(sorted(control.mailing_status.items())))
            changed = wanted != self._last
            self._last, self._control = wanted, control
            if changed or now >= self._next_reconcile:
                if now >= self._relay_retry_at:
                    self._reconcile(control)
        urgent = self._urgent()
        if not urgent:
            self._follow_log()
            self._flush_unwritten()
        if self._beat_now or (now >= self._next_beat and not urgent):
            try:
                self._beat("running")
                if not self._unwritten:
                    self._write_ok()
            except StoreError as exc:
                self._write_failed(f"cannot write to the store: {exc}")

    def _urgent(self) -> bool:
        """Whether a stop noticed less than URGENT_FOR ago is not honoured yet."""
        if all(s.acked_at is not None for s in self._stops.values()):
            return False
        now = self.store.now()
        return any(s.acked_at is None and now - s.noticed < URGENT_FOR for s in self._stops.values())

    def _read_control(self) -> Control | None:
        try:
            if self._reader is None:
                self._reader = ControlReader(self.store)
            control = self._reader.read()
        except Exception as exc:  # the driver's own errors too: the store cannot be read
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._set_problem("store-read", f"store unreachable, nothing done at the relay: {exc}")
            return None
        self._set_problem("store-read", None)
        return control

    def _set_problem(self, source: str, problem: str | None) -> None:
        before = self.note
        had = {s for s in self._problems if s in CANNOT_HOLD}
        if problem is None:
            self._problems.pop(source, None)
        else:
            if self._problems.get(source) != problem:
                log.warning("%s", problem)
            self._problems[source] = problem
        self.note = "; ".join(self._problems.values()) or None
        self._tell_hold(had, source, problem)
        if self.note != before:
            self._beat_now = True

    # -- reconciling the relay with the stop ------------------------------------

    def _reconcile(self, control: Control) -> None:
        now = time.monotonic()
        held_accounts = control.stopped_accounts
        self._track_stops(control)
        try:
            # Read before what to hold: a message counted in flight here is, once
            # its result is recorded, seen by the read below or by a later round.
            in_flight = self._in_flight()
            rows = relays.to_act_on(self.store, self.relay, held_accounts)
        except StoreError as exc:
            self._set_problem("store-read", f"store unreachable, nothing done at the relay: {exc}")
            return
        read_ms = 1000 * (time.monotonic() - now)
        # A change the store has not taken yet (a locked write) is what the relay
        # already did: acted on again it would be held twice, at the cost of a
        # postsuper and a queue listing each round while the store stays locked.
        pending = {c.message_id for c in self._unwritten}
        rows = [r for r in rows if r.queue_id not in self._missing and r.message_id not in pending]
        self._failure = None
        self._unresolved = set()
        changes = self._act(rows, now)
        if self._failure is not None:
            self._set_problem("relay", f"cannot act at the relay: {self._failure}")
            self._relay_retry_at = now + RELAY_RETRY
        else:
            self._set_problem("relay", None)
        self._unwritten.extend(changes)
        acted_ms = 1000 * (time.monotonic() - now)
        self._flush_unwritten()
        if changes:  # where a stop's time goes, round by round: read, relay, record
            log.info("round: %d changes; read %.1f ms, relay %.1f ms, recorded %.1f ms (in flight at engines: %s)",
                     len(changes), read_ms, acted_ms - read_ms, 1000 * (time.monotonic() - now) - acted_ms,
                     in_flight)
        self._count_stops()  # after the hold: that comes first, and its notes are counted
        self._expire_missing(now)
        wants_hold = bool(held_accounts) or any(st == "paused" for st, _ in control.mailing_status.values())
        self._next_reconcile = now + (HELD_RECHECK if wants_hold else FULL_RECHECK)
        if not self._unwritten and self._failure is None and all(s.counted for s in self._stops.values()):
            self._acknowledge(in_flight)  # what the relay did is in the store: the stops it covers are honoured

    def _act(self, rows: list[AtRelay], now: float) -> list[Change]:
        # Oldest first: the relay delivers what it accepted first first (Postfix's queue
        # manager: in order of arrival per destination), so that is what a slow hold must
        # reach before the relay does; message ids follow the order messages were relayed.
        hold = sorted((r for r in rows if r.relay_state == relays.QUEUED and r.mailing_status != DELETED),
                      key=lambda r: r.message_id)
        delete = [r for r in rows if r.mailing_status == DELETED]
        release = [r for r in rows if r.relay_state == relays.HELD and r.mailing_status != DELETED]
        cutoff = self.store.now() - self.max_age
        expire = [r for r in release if r.relay_at is not None and r.relay_at < cutoff]
        release = [r for r in release if not (r.relay_at is not None and r.relay_at < cutoff)]
        changes: list[Change] = []
        if hold:
            started = time.monotonic()
            done = self._call(self.queue.hold, hold)
            log.info("held %d of %d at the relay in %.1f ms", len(done), len(hold), 1000 * (time.monotonic() - started))
            # What the relay was delivering as it was held still goes out: said with the
            # hold, so the acknowledgement that follows counts it (in delivery at the stop).
            delivering = self._delivering(done)
            for r in hold:
                if r.queue_id in done:
                    marked = r.queue_id in delivering
                    changes.append(Change(r.message_id, relays.HELD, relays.DELIVERING_NOTE if marked else None))
                    if marked:
                        self._count_in_delivery(r.account_id, finished=False)
            self.counts["held"] += len(done)
            changes += self._unconfirmed([r for r in hold if r.queue_id not in done], {"hold": relays.HELD}, now)
        if delete:
            done = self._call(self.queue.delete, delete)
            changes += [Change(r.message_id, relays.DELETED_AT_RELAY, "removed from the relay: mailing deleted")
                        for r in delete if r.queue_id in done]
            self.counts["deleted"] += len(done)
            changes += self._unconfirmed([r for r in delete if r.queue_id not in done], {}, now)
        if release:
            done = self._call(self.queue.release, release)
            changes += [Change(r.message_id, relays.QUEUED, None) for r in release if r.queue_id in done]
            self.counts["released"] += len(done)
            rest = [r for r in release if r.queue_id not in done]
            changes += self._unconfirmed(rest, {"active": relays.QUEUED, "incoming": relays.QUEUED,
                                                "deferred": relays.QUEUED}, now)
        if expire:
            done = self._call(self.queue.delete, expire)
            gone = [r.message_id for r in expire if r.queue_id in done]
            self._write_expired(gone)
            changes += self._unconfirmed([r for r in expire if r.queue_id not in done], {}, now)
        return changes

    def _delivering(self, held: set[str]) -> set[str]:
        try:
            return self.queue.delivering(held) if held else set()
        except OSError as exc:  # the hold stands; these deliveries are counted as they finish
            log.warning("cannot tell which held messages the relay is delivering: %s", exc)
            return set()

    def _count_in_delivery(self, account_id: int, *, finished: bool, marked: bool = False) -> None:
        """One more message of the stop that the relay was delivering as it was held (marked: known so
        already), as since_stop counts it; for a stop not counted yet, the store's count includes it."""
        stop = self._stops.get(account_id)
        if stop is None or not stop.counted:
            return
        if not marked:
            stop.in_delivery += 1
        if finished:
            stop.done_while_held += 1

    def _call(self, operation: Callable[[list[str]], set[str]], rows: list[AtRelay]) -> set[str]:
        """One relay operation; on failure what it did still counts, the rest waits for a retry."""
        if self._failure is not None:
            return set()  # the relay failed already in this round: do not pile on
        try:
            return operation([r.queue_id for r in rows])
        except RelayError as exc:
            self._failure = exc
            return exc.done

    def _unconfirmed(self, rows: list[AtRelay], already: dict[str, str], now: float) -> list[Change]:
        """Rows the relay did not act on: already in the wanted state there (recorded so), or gone;
        any other is unresolved (its account's stop is not honoured yet)."""
        if not rows:
            return []
        try:
            where = self.queue.locate(r.queue_id for r in rows)
        except RelayError as exc:  # unknown where they are: not gone, not held; the stop waits
            self._failure = self._failure or exc
            self._unresolved |= {r.account_id for r in rows}
            return []
        changes = []
        missing = []
        for r in rows:
            queue = where.get(r.queue_id)
            if queue is None:
                missing.append(r)
            elif queue in already:
                changes.append(Change(r.message_id, already[queue]))
            else:
                self._unresolved.add(r.account_id)
        self._note_missing(missing, now)
        return changes

    def _note_missing(self, rows: list[AtRelay], now: float) -> None:
        """Not in the relay's queue: its outcome is in the log, or coming; wait for it."""
        for r in rows:
            self._missing.setdefault(r.queue_id, now)

    def _expire_missing(self, now: float) -> None:
        lost = [q for q, since in self._missing.items() if now - since > self.gone_after]
        if not lost:
            return
        try:
            found = relays.find(self.store, self.relay, lost)
        except StoreError:
            return
        for q in lost:
            del self._missing[q]
        if found:
            self._unwritten += [Change(r.message_id, relays.LOST, "no longer in the relay's queue, no outcome in its log")
                                for r in found.values()]
            self.counts["lost"] += len(found)
            self._set_problem("lost", f"{self.counts['lost']} queue ids no longer at the relay without an outcome logged")

    def _write_expired(self, message_ids: list[int]) -> None:
        if not message_ids:
            return
        note = f"held at the relay over {self.max_age / DAY:g} days: removed there, suspended here"
        try:
            self.counts["expired"] += relays.expire(self.store, message_ids, note, patience=WRITE_WAIT)
        except StoreError as exc:
            # Removed from the relay but not yet suspended here: the row still says
            # held; the next reconcile finds the id gone and waits, then marks it lost.
            self._set_problem("store-write", f"cannot write to the store: {exc}")

    def _flush_unwritten(self) -> None:
        if not self._unwritten:
            return
        try:
            relays.apply(self.store, self._unwritten, patience=WRITE_WAIT)
        except StoreError as exc:
            self._write_failed(f"cannot write to the store; {len(self._unwritten)} changes at the relay "
                               f"kept to record: {exc}")
            return
        self._unwritten = []
        self._write_ok()

    def _write_failed(self, problem: str) -> None:
        now = time.monotonic()
        self._failing_since = self._failing_since or now
        if now - self._failing_since >= WRITE_TROUBLE_AFTER:
            self._set_problem("store-write", problem)

    def _write_ok(self) -> None:
        self._failing_since = 0.0
        self._set_problem("store-write", None)

    def report_problem(self, source: str, problem: str | None) -> None:
        """A problem from outside the agent's rounds (a failing notification), for its note."""
        self._set_problem(source, problem)

    def _tell_hold(self, had: set[str], source: str, problem: str | None) -> None:
        if self.on_event is None or source not in CANNOT_HOLD:
            return
        try:
            if problem is not None and source not in had:
                self.on_event("relay_cannot_hold", {"source": source, "why": problem})
            elif problem is None and had == {source}:
                self.on_event("relay_can_hold", {"source": source})
        except Exception:  # a listener's fault is not the agent's
            log.exception("telling of a relay problem failed")

    def acknowledged_generations(self) -> dict[int, int]:
        """account id -> the stop generation honoured at the relay (metrics)."""
        return {acc: s.generation for acc, s in list(self._stops.items()) if s.acked_at is not None}

    # -- acknowledgements ------------------------------------------------------

    def _track_stops(self, control: Control) -> None:
        for acc in list(self._stops):
            if acc not in control.stopped_accounts or control.generations.get(acc) != self._stops[acc].generation:
                del self._stops[acc]
        for acc in control.stopped_accounts:
            generation = control.generations.get(acc, 0)
            if acc not in self._stops:
                self._stops[acc] = _Stop(generation, self.store.now())

    def _count_stops(self) -> None:
        """What the relay did since each new stop, from the store: an agent that starts
        (again) in the middle of a stop reports what the one before saw; from here on
        each change recorded adds to it. Once nothing is left unwritten (else the
        store's count would miss it), after the round's hold (the count reads every
        relayed message of the account: not before what is urgent)."""
        uncounted = [acc for acc, stop in self._stops.items() if not stop.counted]
        if not uncounted or self._unwritten:
            return
        try:
            since = relays.since_stop(self.store, self.relay, uncounted)
        except StoreError:
            return  # counted at a later round
        for acc in uncounted:
            stop, done = self._stops[acc], since.get(acc, relays.SinceStop(0, 0, 0))
            stop.in_delivery, stop.delivered_after, stop.bounced_after, stop.done_while_held = done
            stop.counted = True

    def _in_flight(self) -> dict[int, int] | None:
        """Per account with a stop not yet honoured: its messages live engines claimed and
        have not recorded yet (None: no such stop). Raises StoreError."""
        waiting = [acc for acc, stop in self._stops.items() if stop.acked_at is None]
        if not waiting:
            return None
        live = engine_rows.live_engines(self.store)
        self._live = live
        return relays.in_flight(self.store, waiting, [e.id for e in live])

    def _acknowledge(self, in_flight: dict[int, int] | None) -> None:
        """A stop is honoured once what its account had queued at the relay is held (or gone).

        Only once every live engine has acknowledged it and none of them still
        has a message of the account in flight (claimed before the stop, its
        result not recorded: the relay may have accepted it already, and its
        queue id is known only once recorded). `in_flight` was read before the
        round's read of what to hold, so everything counted there as recorded
        was held by this round. Claims of engines that are gone do not count.
        """
        if in_flight is None:
            self._set_problem("in-flight", None)
            return
        now = time.monotonic()
        waiting_for = []
        for acc, stop in self._stops.items():
            if stop.acked_at is not None or acc in self._unresolved:
                continue
            unacked = [e for e in self._live if e.acknowledged_generation(acc) < stop.generation]
            pending = in_flight.get(acc, 0)
            if unacked or pending:
                stop.waiting_since = stop.waiting_since or now
                if now - stop.waiting_since >= WAITING_SHOWN_AFTER:
                    waiting_for.append(f"stop {stop.generation}: waiting for "
                                       + (f"{pending} messages in flight at engines" if pending
                                          else f"{len(unacked)} engines to acknowledge"))
                continue
            stop.acked_at = self.store.now()
            self._beat_now = True
            log.info("stop %d of account %d honoured at the relay", stop.generation, acc)
        self._set_problem("in-flight", "; ".join(waiting_for) or None)

    def acknowledgements(self) -> dict[int, StopAck]:
        try:
            held = relays.held_per_account(self.store, self.relay)
        except StoreError:
            held = {}
        # Held for the stop: what is on hold now, and the held ones the relay was
        # delivering as they were held that finished since (no longer on hold).
        return {acc: StopAck(s.generation, held.get(acc, 0) + s.done_while_held, s.in_delivery, s.delivered_after,
                             s.bounced_after, s.acked_at or 0.0)
                for acc, s in self._stops.items() if s.acked_at is not None}

    # -- outcomes from the relay's log --------------------------------------------

    def _follow_log(self) -> None:
        try:
            fresh = self.queue.outcomes()
        except OSError as exc:
            self._set_problem("log", f"cannot read the relay's log: {exc}")
            return
        down = self.queue.down()
        self._set_problem("relay-down", down)
        if self._was_down and down is None:
            self._relay_retry_at = 0.0  # back: act now, before it delivers what it holds
            self._next_reconcile = 0.0
        self._was_down = down is not None
        for event in self.queue.events():
            self._set_problem("relay-event", event)
            self._event_until = time.monotonic() + EVENT_SHOWN_FOR
        if self._event_until and time.monotonic() > self._event_until:
            self._event_until = 0.0
            self._set_problem("relay-event", None)
        if not fresh and not self._unmatched:
            return
        now = time.monotonic()
        batch = {o.queue_id: o for o, _ in self._unmatched.values()}
        first_seen = {q: t for q, (_, t) in self._unmatched.items()}
        for o in fresh:
            batch[o.queue_id] = o  # the latest word on an id wins (a deferral, then delivered)
            first_seen.setdefault(o.queue_id, now)
        try:
            found = relays.find(self.store, self.relay, list(batch))
        except StoreError as exc:
            self._set_problem("store-read", f"store unreachable: {exc}")
            self._unmatched = {q: (o, first_seen[q]) for q, o in batch.items()}
            return
        changes = []
        for q, o in batch.items():
            r = found.get(q)
            if r is None:
                continue
            self._missing.pop(q, None)
            # An attempt on a message already held: the relay was delivering it as it was held.
            held_first = r.relay_state == relays.HELD
            prefix = relays.IN_DELIVERY_NOTE if held_first else ""
            if o.status == "deferred":
                changes.append(Change(r.message_id, r.relay_state, f"{prefix}deferred: {o.reply}", r.relay_at))
                self.counts["deferred"] += 1
                if held_first:
                    self._count_in_delivery(r.account_id, finished=False, marked=r.in_delivery)
                continue
            state = relays.DELIVERED if o.status == "delivered" else relays.BOUNCED
            changes.append(Change(r.message_id, state, prefix + o.reply))
            self.counts[o.status] += 1
            verdict = self._watch.add(r.mailing_id, r.account_id, OK if state == relays.DELIVERED else BOUNCED, o.reply)
            if verdict is not None:
                # On its own thread: the pause waits for the write lock and the dot
                # fence, and this loop must keep holding for stops meanwhile.
                threading.Thread(target=self._carry_out, args=(verdict,), daemon=True,
                                 name=f"auto-{verdict.scope}-{verdict.key}").start()
            if held_first:
                self._count_in_delivery(r.account_id, finished=True, marked=r.in_delivery)
            stop = self._stops.get(r.account_id)
            if stop is not None and stop.counted:  # as since_stop counts it
                if o.status == "delivered":
                    stop.delivered_after += 1
                else:
                    stop.bounced_after += 1
        self._unwritten += changes
        # Outcomes of messages not recorded yet (the engine writes its results in
        # batches) are tried again; those of messages not ours are dropped in time.
        self._unmatched = {q: (o, first_seen[q]) for q, o in batch.items()
                           if q not in found and now - first_seen[q] < UNMATCHED_FOR}

    def _carry_out(self, verdict: Verdict) -> None:
        log.warning("%s %d past the policy's %s threshold at the relay: %s", verdict.scope, verdict.key,
                    verdict.rule, {k: v for k, v in verdict.figures.items() if k != "top_replies"})
        commit = auto_pause.pause_mailing if verdict.scope == "mailing" else auto_pause.stop_account
        try:
            trip = commit(self.store, verdict.key, verdict.rule, verdict.figures, self.agent_id)
        except StoreError as exc:
            log.error("could not carry out the automatic %s of %s %d: %s",
                      "pause" if verdict.scope == "mailing" else "stop", verdict.scope, verdict.key, exc)
            return
        if trip is None:
            return
        self.tripped_total += 1
        log.warning("%s", trip.summary())
        self._next_reconcile = 0.0  # hold what it still has at the relay now
        if self.on_event is not None:
            try:
                self.on_event("automatic_pause", auto_pause.trip_details(trip))
            except Exception:  # a listener's fault is not the agent's
                log.exception("telling of an automatic pause failed")
        for listener in self.trip_listeners:
            try:
                listener(trip)
            except Exception:
                log.exception("automatic pause listener failed")

    # -- heartbeat -------------------------------------------------------------

    def _beat(self, state: str) -> None:
        self._beat_now = False
        self._next_beat = time.monotonic() + self.heartbeat_interval
        try:
            size: int | None = relays.at_relay(self.store, self.relay)
        except StoreError:
            size = None
        self.queue_size = size
        relays.beat(
            self.store, self.agent_id, acknowledged=self.acknowledgements(), counts=dict(self.counts),
            patience=WRITE_WAIT if state == "running" else relays.WRITE_PATIENCE,
            host=socket.gethostname(), pid=os.getpid(), kind=self.kind, relay=self.relay,
            started_at=self.started_at, state=state, queue_size=size, note=self.note,
        )
