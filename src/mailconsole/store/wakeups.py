"""Which operator actions wake engines and consoles, and the one place that sends the wake-up.

Every action that changes what may be sent (a stop, pause, delete, resume) or adds
work (a new mailing, a requeue, a new time) is audited in its own transaction, so
the audit entry is where its wake-up is queued too: it commits with the action or
not at all. Only PostgreSQL stores have wake-ups (LISTEN/NOTIFY: see
backends/pg_notify.py); on SQLite every reader polls and this does nothing.
"""

from __future__ import annotations

from sqlalchemy import Connection

# audit action -> the wake-up it sends (pg_notify.WHATS)
ACTION_WAKES = {
    "stop": "stop",
    "pause": "pause",
    "delete": "delete",
    "resume": "resume",
    "unpause": "resume",
    "create": "work",
    "requeue": "work",
    "reschedule": "work",
}


def after_action(conn: Connection, action: str, account: str, mailing_id: int | None) -> None:
    """Queue the wake-up of an audited action in its transaction (PostgreSQL stores only)."""
    what = ACTION_WAKES.get(action)
    if what is None or conn.dialect.name != "postgresql":
        return
    from .backends import pg_notify  # psycopg: imported by PostgreSQL stores only

    details: dict[str, object] = {"account": account}
    if mailing_id is not None:
        details["mailing"] = mailing_id
    try:
        pg_notify.notify(conn, what, **details)
    except ValueError:  # an account name too long for a payload: the hint goes without it
        pg_notify.notify(conn, what, **({"mailing": mailing_id} if mailing_id is not None else {}))
