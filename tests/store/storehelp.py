"""Helpers for the store tests: actors, recipients, and the counters-versus-rows check."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from csvfiles import write_csv as write_recipients  # noqa: F401  (the name these tests use)

from sqlalchemy import func, select

from mailconsole.store import Actor
from mailconsole.store.schema import mailings, messages, revisions

ALICE = Actor("alice", "192.0.2.7")
SENDER = "news@shop.example"


def recipients(n: int, start: int = 0, **fields: str) -> list[dict[str, str]]:
    return [{"email": f"user{i}@example.net", "name": f"User {i}", **fields} for i in range(start, start + n)]


def actual_states(store, mailing_id: int) -> dict[str, int]:
    """What the message table really holds for a mailing: state -> count."""
    with store.read() as conn:
        rows = conn.execute(
            select(messages.c.state, func.count()).where(messages.c.mailing_id == mailing_id).group_by(messages.c.state)
        ).all()
    return {state: n for state, n in rows}


def assert_counters_match(store) -> None:
    """Every mailing's maintained counters equal the states of its rows (one read, one snapshot)."""
    with store.read() as conn:
        rows = conn.execute(select(mailings)).all()
        grouped = conn.execute(
            select(messages.c.mailing_id, messages.c.state, func.count(), func.sum(messages.c.recovered))
            .group_by(messages.c.mailing_id, messages.c.state)
        ).all()
        sent_by_revision = dict(
            conn.execute(select(revisions.c.mailing_id, func.sum(revisions.c.sent)).group_by(revisions.c.mailing_id)).all()
        )
    real: dict[int, dict[str, int]] = {}
    recovered: dict[int, int] = {}
    for mid, state, n, rec in grouped:
        real.setdefault(mid, {})[state] = n
        recovered[mid] = recovered.get(mid, 0) + (rec or 0)
    for m in rows:
        have = real.get(m.id, {})
        kept = {"queued": m.queued, "claimed": m.claimed, "sent": m.sent, "failed": m.failed, "suspended": m.suspended,
                "suppressed": m.suppressed}
        assert kept == {k: have.get(k, 0) for k in kept}, f"mailing {m.id} ({m.status}): counters {kept} vs rows {have}"
        assert set(have) <= set(kept), f"mailing {m.id}: unexpected states {have}"
        if m.status != "deleted":  # a deleted mailing's unsent rows are purged; recipients stays as history
            assert m.recipients == sum(have.values())
            assert m.recovered == recovered.get(m.id, 0), f"mailing {m.id}: recovered {m.recovered} vs rows"
        assert sent_by_revision.get(m.id, 0) == m.sent, f"mailing {m.id}: per-revision sent differs from sent"


def sent(store, claimed) -> list:
    """Outcomes saying these claimed messages went out with their mailing's newest revision."""
    from mailconsole.store import queue, revisions

    rev = {c.mailing_id: revisions.newest_revision(store, c.mailing_id).id for c in claimed}
    return [queue.Outcome(c.id, c.mailing_id, "sent", revision_id=rev[c.mailing_id]) for c in claimed]


@contextmanager
def python_child(code: str, *args: str) -> Iterator[subprocess.Popen]:
    """`python -c code args…` with its output piped as text; killed on the way out if still running."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def rest_of_output(proc: subprocess.Popen, timeout: float) -> str:
    """Everything the child still writes, once it has exited.

    read(), not communicate(): communicate() would skip what readline() already buffered.
    """
    out = proc.stdout.read()  # type: ignore[union-attr]
    proc.wait(timeout)
    return out
