"""Which operator actions wake engines and consoles, and the one place that sends the wake-up.

Every action that changes what may be sent (a stop, pause, delete, resume) or adds
work (a new mailing, a requeue, a new time) is audited in its own transaction, so
the audit entry is where its wake-up is queued too: it commits with the action or
not at all. Whether the store has wake-ups is its backend's (`Backend.wake`:
LISTEN/NOTIFY on PostgreSQL, see backends/pg_notify.py; on SQLite every reader
polls and nothing is sent).
"""

from __future__ import annotations

from sqlalchemy import Connection

from . import backends

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
    """Queue the wake-up of an audited action in its transaction (where the store has them)."""
    what = ACTION_WAKES.get(action)
    if what is None:
        return
    backend = backends.of_connection(conn)
    mailing: dict[str, object] = {} if mailing_id is None else {"mailing": mailing_id}
    try:
        backend.wake(conn, what, {"account": account, **mailing})
    except ValueError:  # an account name too long for a payload: the hint goes without it
        backend.wake(conn, what, mailing)
