"""The append-only audit log of operator actions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from . import wakeups
from .actor import Actor
from .connection import Store
from .schema import audit


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    ssh_client: str | None
    account: str
    action: str
    mailing_id: int | None
    details: dict[str, Any]


def record(
    conn: Connection,
    at: float,
    actor: Actor,
    account: str,
    action: str,
    mailing_id: int | None = None,
    **details: Any,
) -> None:
    """Append one entry inside the caller's transaction: it commits with the action,
    and so does the action's wake-up of engines and consoles (store/wakeups.py)."""
    conn.execute(
        insert(audit).values(
            at=at,
            actor=actor.user,
            ssh_client=actor.ssh_client,
            account=account,
            action=action,
            mailing_id=mailing_id,
            details=json.dumps(details, sort_keys=True),
        )
    )
    wakeups.after_action(conn, action, account, mailing_id)


def entries(store: Store, *, limit: int = 50, account: str | None = None) -> list[AuditEntry]:
    """Newest first."""
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if account is not None:
        query = query.where(audit.c.account == account)
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [
        AuditEntry(r.id, r.at, r.actor, r.ssh_client, r.account, r.action, r.mailing_id, json.loads(r.details))
        for r in rows
    ]
