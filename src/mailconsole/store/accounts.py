"""Accounts and their emergency stop: stop, resume, and the 7-day rule."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, and_, func, insert, select, update

from . import audit, stop_intent
from .actor import Actor
from .batching import TimedBatches
from .connection import Store
from .backends import FenceResult
from .dot_fence import fence_result, wait_for_allowed_dots
from .errors import NotFound, Refused, StoreBusy
from .retry import FIRST_TRY, RETRY_SLICE, OnWait, until_applied
from .schema import accounts, mailings, messages, revisions, state_is

DAY = 86400.0
DEFAULT_MAX_AGE_DAYS = 7.0


@dataclass(frozen=True)
class AccountState:
    id: int
    name: str
    stopped: bool
    stopped_at: float | None
    stopped_by: str | None
    stopped_from: str | None
    reason: str | None
    generation: int
    resumed_at: float | None
    resumed_by: str | None


@dataclass(frozen=True)
class MailingPlan:
    """One mailing's part of a resume: what it sends now, what the 7-day rule suspends, what stays held.

    Only a sending mailing sends on resume; the queued messages of a paused one
    (or of one planned for later, or still preparing) stay queued, held.
    """

    id: int
    name: str
    status: str
    revision: int | None  # the newest revision's number: what every unsent message is rendered with
    to_send: int
    to_suspend: int
    held: int


@dataclass(frozen=True)
class ResumePlan:
    """What a resume does (or did): per-mailing rows and their totals."""

    stopped: bool
    cutoff: float
    to_send: int  # queued in sending mailings, not stale: goes out on resume
    to_suspend: int
    by_mailing: dict[int, int] = field(default_factory=dict)  # mailing id -> to suspend
    # A stop intent that holds the account on this host (preview), or that resume cleared.
    intent: stop_intent.Intent | None = None
    held: int = 0  # queued in paused, planned or preparing mailings: not sent on resume
    mailings: tuple[MailingPlan, ...] = ()  # those with anything queued or suspended now, by id


def ensure_account(store: Store, name: str) -> int:
    with store.read() as conn:
        row = conn.execute(select(accounts.c.id).where(accounts.c.name == name)).first()
    if row:
        return row[0]
    with store.write() as conn:
        row = conn.execute(select(accounts.c.id).where(accounts.c.name == name)).first()
        if row:
            return row[0]
        return conn.execute(insert(accounts).values(name=name, stopped=False, generation=0)).inserted_primary_key[0]


def account_id(conn: Connection, name: str) -> int:
    row = conn.execute(select(accounts.c.id).where(accounts.c.name == name)).first()
    if row is None:
        raise NotFound(f"no account named '{name}'; check --account")
    return row[0]


def _state(conn: Connection, name: str) -> AccountState:
    r = conn.execute(select(accounts).where(accounts.c.name == name)).first()
    if r is None:
        raise NotFound(f"no account named '{name}'; check --account")
    return AccountState(
        r.id, r.name, bool(r.stopped), r.stopped_at, r.stopped_by, r.stopped_from,
        r.stop_reason, r.generation, r.resumed_at, r.resumed_by,
    )


def state(store: Store, account: str = "default") -> AccountState:
    with store.read() as conn:
        return _state(conn, account)


# How long a stop waits for the write lock before it posts its intent (engines'
# own transactions last a few milliseconds; anything longer is another job).
INTENT_AFTER = FIRST_TRY


def stop(
    store: Store,
    actor: Actor,
    account: str = "default",
    reason: str | None = None,
    *,
    on_wait: OnWait | None = None,
    on_intent: Callable[[stop_intent.Intent], None] | None = None,
    intent: bool = True,
    details: dict | None = None,
    on_stopped: Callable[[Connection], None] | None = None,
    bound: float | None = None,
    on_fence: Callable[[FenceResult], None] | None = None,
) -> AccountState:
    """Stop every mailing of the account. Idempotent; returns once durable, never refused.

    After this commits no claim of the account's messages can succeed: the claim
    statement requires the account not stopped, and the store's backend orders
    the two (one write lock on SQLite, advisory locks on PostgreSQL).
    Before returning it passes the dot fence, so no dot allowed before the
    commit is still being written by any engine.

    While another writer holds the lock it waits for as long as it takes
    (on_wait reports each failed try; raising from it gives up). If the lock is
    not free within INTENT_AFTER it first posts a stop intent (store/stop_intent.py)
    and passes the dot fence: from then on engines on this host send nothing of
    the account although the store has not recorded the stop yet (on_intent is
    told). The intent is removed once the stop has committed; if this process
    dies first it stays and keeps holding the account until an operator acts.
    intent=False only waits (for comparison: bench/stop_intent.py).
    `details` and `on_stopped` as for `commit_stop`.

    The fence is waited for at most `bound` seconds (default: dot_fence.stop_bound());
    on_fence is told what it found: on a store shared by many hosts, the engines
    that did not confirm the stop in time and when they are certain to have stopped.
    """
    started = time.monotonic()
    try:
        try:
            done = commit_stop(store, actor, account, reason, patience=INTENT_AFTER, details=details,
                               on_stopped=on_stopped)
            stop_intent.remove(store, done.id, done.generation)  # a stale one this stop has spent
            return done
        except StoreBusy as busy:
            first = busy
        posted = post_intent(store, actor, account) if intent else None
        if posted is not None:
            wait_for_allowed_dots(store)  # no dot allowed before the intent is still on its way
            if on_intent is not None:
                on_intent(posted)
        if on_wait is not None:
            on_wait(first, time.monotonic() - started)
        done = until_applied(
            lambda patience: commit_stop(store, actor, account, reason, patience=patience, details=details,
                                         on_stopped=on_stopped), on_wait,
            started=started, first=RETRY_SLICE,  # the short first try was the one above
        )
        stop_intent.remove(store, done.id, done.generation)
        return done
    finally:
        found = fence_result(store, bound)
        if on_fence is not None:
            on_fence(found)


def post_intent(store: Store, actor: Actor, account: str) -> stop_intent.Intent | None:
    """Post the stop intent for the generation the stop will create (none if already stopped).

    For a caller running its own retries around `commit_stop` (the console): it
    must pass the dot fence after this, and remove the intent once the stop has
    committed (`stop_intent.remove`), as `stop` does.
    """
    current = state(store, account)  # a read: WAL readers never wait for the writer
    if current.stopped:
        return None  # already enforced by the store; the commit only adds the audit entry
    try:
        return stop_intent.write(store, current.id, account, current.generation + 1, actor, store.now())
    except OSError:
        return None  # a full disk or a read-only directory: the stop still waits for the store


def commit_stop(
    store: Store, actor: Actor, account: str = "default", reason: str | None = None, *, patience: float | None = None,
    details: dict | None = None, on_stopped: Callable[[Connection], None] | None = None,
) -> AccountState:
    """The stop's durable commit alone, one try: `stop` without the retries and the dot fence.

    For a caller that must do something between the two (the console tells the
    engine inside it to look at the stop again first); it must then call
    `dot_fence.wait_for_allowed_dots` itself before saying that nothing more goes out.
    Raises StoreBusy if the write lock is not free within `patience` seconds
    (default: the store's busy timeout).
    `details` go into the audit entry. `on_stopped` runs inside the transaction
    only when this call is the one that stopped the account; with it, a stop of
    an account already stopped records nothing (an automatic stop asked by
    several engines is one stop: store/auto_pause.py).
    """
    with store.write(durable=True, patience=patience) as conn:
        store.backend.exclude_claims(conn, account_id(conn, account))  # claims commit before this, or see it
        current = _state(conn, account)
        now = store.now()
        if current.stopped:
            if on_stopped is None:
                audit.record(conn, now, actor, account, "stop", already_stopped=True, reason=reason)
            return current
        conn.execute(
            update(accounts)
            .where(accounts.c.id == current.id)
            .values(
                stopped=True,
                stopped_at=now,
                stopped_by=actor.user,
                stopped_from=actor.ssh_client,
                stop_reason=reason,
                generation=accounts.c.generation + 1,
            )
        )
        audit.record(conn, now, actor, account, "stop", reason=reason, generation=current.generation + 1,
                     **(details or {}))
        if on_stopped is not None:
            on_stopped(conn)
        return _state(conn, account)


def _live_mailing_ids(conn: Connection, acc_id: int) -> list[int]:
    return list(
        conn.execute(
            select(mailings.c.id).where(mailings.c.account_id == acc_id, mailings.c.status != "deleted")
        ).scalars()
    )


def _mailing_plans(conn: Connection, acc_id: int, suspended: dict[int, int], *, before: bool) -> list[MailingPlan]:
    """Per-mailing rows from the counters; `before`: the stale messages are still counted as queued."""
    newest = (
        select(revisions.c.mailing_id, func.max(revisions.c.number).label("number"))
        .group_by(revisions.c.mailing_id)
        .subquery()
    )
    rows = conn.execute(
        select(mailings.c.id, mailings.c.name, mailings.c.status, mailings.c.queued, newest.c.number)
        .outerjoin(newest, newest.c.mailing_id == mailings.c.id)
        .where(mailings.c.account_id == acc_id, mailings.c.status != "deleted")
        .order_by(mailings.c.id)
    ).all()
    out = []
    for r in rows:
        stale = suspended.get(r.id, 0)
        left = r.queued - stale if before else r.queued
        if not (left or stale):
            continue
        sends = r.status == "sending"
        out.append(MailingPlan(r.id, r.name, r.status, r.number, left if sends else 0, stale, 0 if sends else left))
    return out


def _totals(stopped: bool, cutoff: float, rows: list[MailingPlan], by_mailing: dict[int, int]) -> ResumePlan:
    return ResumePlan(
        stopped, cutoff, sum(m.to_send for m in rows), sum(by_mailing.values()), dict(by_mailing),
        held=sum(m.held for m in rows), mailings=tuple(rows),
    )


def _plan(conn: Connection, acc: AccountState, cutoff: float) -> ResumePlan:
    by_mailing: dict[int, int] = {}
    for mid in _live_mailing_ids(conn, acc.id):
        # Uses ix_messages_claim (mailing, state, due): only the stale queued rows are read.
        n = conn.execute(
            select(func.count()).select_from(messages).where(
                messages.c.mailing_id == mid, state_is("queued"), messages.c.due_at < cutoff
            )
        ).scalar_one()
        if n:
            by_mailing[mid] = n
    return _totals(acc.stopped, cutoff, _mailing_plans(conn, acc.id, by_mailing, before=True), by_mailing)


def resume_preview(store: Store, account: str = "default", max_age_days: float = DEFAULT_MAX_AGE_DAYS) -> ResumePlan:
    """What a resume now would send and suspend; changes nothing."""
    with store.read() as conn:
        acc = _state(conn, account)
        plan = _plan(conn, acc, store.now() - max_age_days * DAY)
    intent = stop_intent.pending(store, acc.id, acc.generation)
    return plan if intent is None else replace(plan, intent=intent)


def suspend_stale(conn: Connection, mailing_id: int, cutoff: float, limit: int | None = None) -> int:
    """Apply the 7-day rule to (up to `limit` messages of) one mailing; counters move in the same transaction."""
    stale = and_(messages.c.mailing_id == mailing_id, state_is("queued"), messages.c.due_at < cutoff)
    if limit is not None:
        # Uses ix_messages_claim (mailing, state, due): the batch reads only stale rows.
        stale = messages.c.id.in_(select(messages.c.id).where(stale).limit(limit).scalar_subquery())
    n = conn.execute(update(messages).where(stale).values(state="suspended")).rowcount
    if n:
        conn.execute(
            update(mailings)
            .where(mailings.c.id == mailing_id)
            .values(queued=mailings.c.queued - n, suspended=mailings.c.suspended + n)
        )
    return n


class _StopChanged(Exception):
    """The account was resumed, or stopped anew, by someone else while this resume ran."""


def _still_stopped(conn: Connection, account: str, generation: int) -> AccountState:
    acc = _state(conn, account)
    if not acc.stopped or acc.generation != generation:
        raise _StopChanged
    return acc


def resume(
    store: Store, actor: Actor, account: str = "default", max_age_days: float = DEFAULT_MAX_AGE_DAYS
) -> ResumePlan:
    """Resume the account: stale queued messages are suspended, the rest will send.

    Resuming an account that is not stopped changes nothing (and says so),
    except that it clears a stale stop intent (one whose writer died before
    applying it: see store/stop_intent.py), which until then holds the
    account's mail on this host. An intent whose writer is still waiting for the
    store is refused: that stop is about to be applied.

    The 7-day rule may suspend a million messages; one transaction doing that
    held the write lock for seconds, and a stop pressed meanwhile waited behind
    it. So the stale messages are suspended in short steps *while the account
    stays stopped* (TimedBatches), each step checking that it is still the
    same stop (same generation): nothing can claim them meanwhile, so no one can
    tell the steps from one transaction. Only the last short transaction flips
    the account to running, after suspending whatever the steps left (rows
    imported meanwhile). If the resume is interrupted, or someone else resumes
    or stops again first, the account stays as it is, and the messages already
    suspended are exactly ones this rule suspends on resuming this stop: visible,
    and requeueable; running resume again finishes the job.
    """
    now = store.now()
    cutoff = now - max_age_days * DAY
    current = state(store, account)
    intent = stop_intent.pending(store, current.id, current.generation)
    if intent is not None and intent.writer_alive():
        raise Refused(
            f"a stop of account {account} (pid {intent.pid}) is waiting for the store to apply it; "
            "resume once it has been applied"
        )
    if not current.stopped:
        if intent is not None:
            with store.write() as conn:
                audit.record(conn, now, actor, account, "resume", cleared_stop_intent=intent.as_dict())
            stop_intent.remove(store, current.id, intent.generation if intent.generation >= 0 else None)
            return ResumePlan(False, cutoff, 0, 0, intent=intent)
        return ResumePlan(False, cutoff, 0, 0)
    # Imported here, not in the last transaction: a first import in a fresh
    # process costs tens of milliseconds, and that transaction holds the write lock.
    from .mailings import finished_status  # late: mailings imports this module

    status_when_finished = finished_status()
    with store.read() as conn:
        live = _live_mailing_ids(conn, current.id)
    batches = TimedBatches()
    done: dict[int, int] = {}
    try:
        for mid in live:
            while True:
                def step(conn: Connection, size: int, mid: int = mid) -> int:
                    _still_stopped(conn, account, current.generation)
                    return suspend_stale(conn, mid, cutoff, size)

                size = batches.size
                n = batches.step(store, step)
                if n:
                    done[mid] = done.get(mid, 0) + n
                if n < size:
                    break
        while True:
            with store.write() as conn:
                t0 = time.perf_counter()
                plan = _finish_resume(conn, store, actor, account, current.generation, cutoff, batches.size,
                                      done, max_age_days, now, status_when_finished)
            batches.observe(batches.size, time.perf_counter() - t0)
            if plan is not None:
                break
    except _StopChanged:
        return ResumePlan(False, cutoff, 0, sum(done.values()), done)
    if intent is not None:
        stop_intent.remove(store, current.id, intent.generation if intent.generation >= 0 else None)
    return plan


def _finish_resume(
    conn: Connection, store: Store, actor: Actor, account: str, generation: int, cutoff: float, limit: int,
    done: dict[int, int], max_age_days: float, now: float, finished_status: ColumnElement,
) -> ResumePlan | None:
    """The resume's last transaction; None if stale rows were still left (committed, try again)."""
    acc = _still_stopped(conn, account, generation)
    left = False
    for mid in _live_mailing_ids(conn, acc.id):
        n = suspend_stale(conn, mid, cutoff, limit)
        if n:
            done[mid] = done.get(mid, 0) + n
        left = left or n >= limit
    if left:
        return None
    if done:
        # A sending mailing whose every unsent message was just suspended has
        # nothing left to send: it is finished, sent or failed (requeue makes
        # it sending again).
        conn.execute(
            update(mailings)
            .where(
                mailings.c.id.in_(list(done)),
                mailings.c.status == "sending",
                mailings.c.queued == 0,
                mailings.c.claimed == 0,
            )
            .values(status=finished_status)
        )
    plan = _totals(True, cutoff, _mailing_plans(conn, acc.id, done, before=False), done)
    conn.execute(
        update(accounts)
        .where(accounts.c.id == acc.id)
        .values(stopped=False, resumed_at=now, resumed_by=actor.user)
    )
    audit.record(
        conn, now, actor, account, "resume",
        will_send=plan.to_send, suspended=plan.to_suspend, held=plan.held, max_age_days=max_age_days,
        stopped_since=acc.stopped_at,
    )
    return plan
