"""Accounts and their emergency stop: stop, resume, and the 7-day rule."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, func, insert, select, update

from . import audit
from .actor import Actor
from .connection import Store
from .dot_fence import wait_for_allowed_dots
from .errors import NotFound
from .schema import accounts, mailings, messages

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
class ResumePlan:
    """What a resume does (or did): per-mailing counts and totals."""

    stopped: bool
    cutoff: float
    to_send: int
    to_suspend: int
    by_mailing: dict[int, int] = field(default_factory=dict)  # mailing id -> to suspend


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


def stop(store: Store, actor: Actor, account: str = "default", reason: str | None = None) -> AccountState:
    """Stop every mailing of the account. Idempotent; returns once durable.

    After this commits no claim of the account's messages can succeed: the claim
    statement requires the account not stopped, and both take the write lock.
    Before returning it passes the dot fence, so no dot allowed before the
    commit is still being written by any engine.
    """
    try:
        return commit_stop(store, actor, account, reason)
    finally:
        wait_for_allowed_dots(store)


def commit_stop(store: Store, actor: Actor, account: str = "default", reason: str | None = None) -> AccountState:
    """The stop's durable commit alone: `stop` without passing the dot fence.

    For a caller that must do something between the two (the console tells the
    engine inside it to look at the stop again first); it must then call
    `dot_fence.wait_for_allowed_dots` itself before saying that nothing more goes out.
    """
    with store.write(durable=True) as conn:
        current = _state(conn, account)
        now = store.now()
        if current.stopped:
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
        audit.record(conn, now, actor, account, "stop", reason=reason, generation=current.generation + 1)
        return _state(conn, account)


def _live_mailing_ids(conn: Connection, acc_id: int) -> list[int]:
    return list(
        conn.execute(
            select(mailings.c.id).where(mailings.c.account_id == acc_id, mailings.c.status != "deleted")
        ).scalars()
    )


def _plan(conn: Connection, acc: AccountState, cutoff: float) -> ResumePlan:
    by_mailing: dict[int, int] = {}
    for mid in _live_mailing_ids(conn, acc.id):
        # Uses ix_messages_claim (mailing, state, due): only the stale queued rows are read.
        n = conn.execute(
            select(func.count()).select_from(messages).where(
                messages.c.mailing_id == mid, messages.c.state == "queued", messages.c.due_at < cutoff
            )
        ).scalar_one()
        if n:
            by_mailing[mid] = n
    queued = conn.execute(
        select(func.coalesce(func.sum(mailings.c.queued), 0)).where(
            mailings.c.account_id == acc.id, mailings.c.status != "deleted"
        )
    ).scalar_one()
    to_suspend = sum(by_mailing.values())
    return ResumePlan(acc.stopped, cutoff, int(queued) - to_suspend, to_suspend, by_mailing)


def resume_preview(store: Store, account: str = "default", max_age_days: float = DEFAULT_MAX_AGE_DAYS) -> ResumePlan:
    """What a resume now would send and suspend; changes nothing."""
    with store.read() as conn:
        acc = _state(conn, account)
        return _plan(conn, acc, store.now() - max_age_days * DAY)


def suspend_stale(conn: Connection, mailing_id: int, cutoff: float) -> int:
    """Apply the 7-day rule to one mailing; counters move in the same transaction."""
    n = conn.execute(
        update(messages)
        .where(and_(messages.c.mailing_id == mailing_id, messages.c.state == "queued", messages.c.due_at < cutoff))
        .values(state="suspended")
    ).rowcount
    if n:
        conn.execute(
            update(mailings)
            .where(mailings.c.id == mailing_id)
            .values(queued=mailings.c.queued - n, suspended=mailings.c.suspended + n)
        )
    return n


def resume(
    store: Store, actor: Actor, account: str = "default", max_age_days: float = DEFAULT_MAX_AGE_DAYS
) -> ResumePlan:
    """Resume the account: stale queued messages are suspended, the rest will send.

    Resuming an account that is not stopped changes nothing (and says so).
    """
    with store.write() as conn:
        acc = _state(conn, account)
        now = store.now()
        cutoff = now - max_age_days * DAY
        if not acc.stopped:
            return ResumePlan(False, cutoff, 0, 0)
        plan = _plan(conn, acc, cutoff)
        for mid in plan.by_mailing:
            suspend_stale(conn, mid, cutoff)
        if plan.by_mailing:
            from .mailings import finished_status  # late: mailings imports this module

            # A sending mailing whose every unsent message was just suspended has
            # nothing left to send: it is finished, sent or failed (requeue makes
            # it sending again).
            conn.execute(
                update(mailings)
                .where(
                    mailings.c.id.in_(list(plan.by_mailing)),
                    mailings.c.status == "sending",
                    mailings.c.queued == 0,
                    mailings.c.claimed == 0,
                )
                .values(status=finished_status())
            )
        conn.execute(
            update(accounts)
            .where(accounts.c.id == acc.id)
            .values(stopped=False, resumed_at=now, resumed_by=actor.user)
        )
        audit.record(
            conn, now, actor, account, "resume",
            will_send=plan.to_send, suspended=plan.to_suspend, max_age_days=max_age_days,
            stopped_since=acc.stopped_at,
        )
        return plan
