"""Every account's stop state and queue by state, for a metrics scrape: one grouped read.

Like `status.all_accounts`, only the per-mailing counters are summed (never the
message table), so a scrape costs the same with a million messages queued as with
none. Keyed by account id too: engines and relay agents know accounts by id.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from .connection import Store
from .mailings import DELETED
from .schema import accounts, mailings

STATES = ("queued", "claimed", "sent", "failed", "suspended", "suppressed")


@dataclass(frozen=True)
class AccountGauge:
    id: int
    name: str
    stopped: bool
    generation: int
    queue: dict[str, int]  # state (STATES) -> messages of the account's live mailings


def account_gauges(store: Store) -> list[AccountGauge]:
    totals = (
        select(mailings.c.account_id, *(func.sum(getattr(mailings.c, s)).label(s) for s in STATES))
        .where(mailings.c.status != DELETED)
        .group_by(mailings.c.account_id)
        .subquery()
    )
    query = (
        select(accounts.c.id, accounts.c.name, accounts.c.stopped, accounts.c.generation,
               *(getattr(totals.c, s) for s in STATES))
        .select_from(accounts.outerjoin(totals, totals.c.account_id == accounts.c.id))
        .order_by(accounts.c.id)
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [AccountGauge(r.id, r.name, bool(r.stopped), int(r.generation or 0),
                         {s: int(getattr(r, s) or 0) for s in STATES}) for r in rows]


def mailing_accounts(store: Store, mailing_ids: list[int]) -> dict[int, int]:
    """mailing id -> account id, for those that exist (deleted ones too, until purged)."""
    if not mailing_ids:
        return {}
    with store.read() as conn:
        rows = conn.execute(select(mailings.c.id, mailings.c.account_id).where(mailings.c.id.in_(mailing_ids))).all()
    return {r.id: r.account_id for r in rows}
