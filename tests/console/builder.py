"""A small, fixed store for console tests: every status, counters, an engine, audit entries.

Built through the store's own functions (as the CLI and the engine would), with
a frozen clock so every snapshot of the console is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from store_backend import store_at
from mailconsole.store import Actor, Store
from mailconsole.store import accounts, engines, importer, mailings, queue, revisions
from mailconsole.store.schema import mailings as mailings_table

FIXED = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
DAY = 86400.0
OPERATOR = Actor("alice", "203.0.113.7")
ENGINE = "mail-1:4242"


def _csv(path: Path, n: int, start: int = 0) -> Path:
    lines = ["email,first_name"] + [f"user{i}@example.org,Name{i}" for i in range(start, start + n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _create(store: Store, tmp: Path, name: str, n: int, at: float | None = None, subject: str | None = None) -> int:
    result = importer.create_mailing(
        store, OPERATOR, name=name, sender="news@shop.example", subject=subject or f"{name} for {{{{ first_name }}}}",
        text_body="Hello {{ first_name }},\n\nOur news.\n", html_body=None,
        recipients=_csv(tmp / f"{name[:8].strip('[')}-{n}.csv", n), at=at,
    )
    return result.mailing_id


def _send(store: Store, mid: int, sent: int, failed: int = 0, keep_in_flight: int = 0) -> None:
    claimed = queue.claim(store, ENGINE, sent + failed + keep_in_flight, lease_seconds=1e9)
    rev = revisions.newest_revision(store, mid)
    assert rev is not None and len(claimed) == sent + failed + keep_in_flight
    outcomes = [queue.Outcome(c.id, c.mailing_id, "sent", rev.id) for c in claimed[:sent]]
    outcomes += [queue.Outcome(c.id, c.mailing_id, "failed", error="550 mailbox unavailable")
                 for c in claimed[sent:sent + failed]]
    queue.record(store, ENGINE, outcomes)


def build(path: Path, *, stopped: bool = False, clock: float = FIXED) -> Store:
    """The fixed store at `path`; stopped=True leaves the account stopped by alice."""
    tmp = path.parent
    store = Store(store_at(path), clock=lambda: clock)

    done = _create(store, tmp, "Newsletter October", 20)
    _send(store, done, 20)

    old = _create(store, tmp, "Reactivation (old list)", 10, at=clock - 8 * DAY)
    mailings.pause(store, OPERATOR, old)
    accounts.stop(store, OPERATOR, reason="checking the old list")
    accounts.resume(store, OPERATOR)  # the 7-day rule suspends the old list's 10

    sale = _create(store, tmp, "Spring sale", 50, subject="Spring sale: 50% off evrything")
    _send(store, sale, 26, failed=2)
    revisions.save_revision(store, OPERATOR, sale, subject="Spring sale: 50% off everything")
    _send(store, sale, 5, keep_in_flight=2)

    _create(store, tmp, "Black Friday preview", 30, at=clock + DAY + 2 * 3600)
    _create(store, tmp, "Winter teaser", 12, at=clock + 9 * DAY)

    odd = _create(store, tmp, "[bold red]Markup[/] \x1b[31mname", 5, subject="[bold red]Markup[/] for {{ first_name }}")
    mailings.pause(store, OPERATOR, odd)

    preparing = _create(store, tmp, "Loyalty members", 40)
    mailings.pause(store, OPERATOR, preparing)
    with store.write() as conn:  # a mailing caught half-way through preparing
        conn.execute(update(mailings_table).where(mailings_table.c.id == preparing)
                     .values(status="preparing", expected=100))

    engines.beat(
        store, ENGINE, host="mail-1", pid=4242, workers=8, transport="smtp://relay.internal:25",
        started_at=clock - 3600, state="running", in_flight=2, sent_rate=123.4, failed_rate=0.0,
        sent_total=51, failed_total=2, acknowledged={},
    )
    if stopped:
        accounts.stop(store, OPERATOR, reason="wrong list [urgent]")
        queue.release_all(store, ENGINE)
        engines.beat(store, ENGINE, state="running", in_flight=0, sent_rate=0.0, acknowledged={1: 2})
    return store


def build_resume(path: Path, *, now: float = FIXED) -> Store:
    """A stopped account with one mailing of each kind a resume treats differently.

    "Spring sale" sends (20 queued, revision 2); "Old list" was due 9 days before
    `now` (6 queued: the 7-day rule suspends them); "Autumn digest" is paused
    (8 queued: held). Exact totals: 20 sent now, 6 suspended, 8 held.
    """
    tmp = path.parent
    clock = [now - 9 * DAY]
    store = Store(store_at(path), clock=lambda: clock[0])
    _create(store, tmp, "Old list", 6)
    clock[0] = now - 3600
    sale = _create(store, tmp, "Spring sale", 20, subject="Spring sale: 50% off evrything")
    revisions.save_revision(store, OPERATOR, sale, subject="Spring sale: 50% off everything")
    paused = _create(store, tmp, "Autumn digest", 8)
    mailings.pause(store, OPERATOR, paused)
    accounts.stop(store, OPERATOR, reason="wrong discount")
    clock[0] = now
    return store


def add_gone_engines(path: Path, *, now: float = FIXED) -> None:
    """Two engines that quit without a word: one 2 minutes ago (listed, gone), one 20 minutes ago (hidden)."""
    for engine_id, host, silent in (("mail-2:77", "mail-2", 120.0), ("mail-3:88", "mail-3", 1200.0)):
        then = Store(store_at(path), clock=lambda silent=silent: now - silent)
        engines.beat(
            then, engine_id, host=host, pid=int(engine_id.split(":")[1]), workers=4,
            transport="smtp://relay.internal:25", started_at=now - 7200, state="running", in_flight=3,
            sent_rate=50.0, failed_rate=0.0, sent_total=900, failed_total=0, acknowledged={},
        )
        then.close()
