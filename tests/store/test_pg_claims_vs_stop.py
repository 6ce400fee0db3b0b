"""On PostgreSQL, claims from several processes race stops and resumes: the stop always wins.

Checked by commit order on the server itself (track_commit_timestamp): every claimed
message row still carries the id of the transaction that claimed it (xmin; the test
never records outcomes), every stop and resume its audit row. A claim that commits
after a stop's commit and before the next resume must have claimed nothing of that
account. Starvation is counted, not timed: the claims of the account that committed
while a stop was under way (between the moment it was asked for and its commit).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from mailconsole.store import Actor, Store, accounts
from mailconsole.store.schema import mailings

CLAIMERS = 3
ROWS_PER_ACCOUNT = 30_000
STOPS = 15  # per account
# A fair lock lets a stop wait only for the claims holding the account when it asked
# (one per claimer) and those begun while its request travelled; starvation is dozens.
MAX_CLAIMS_DURING_A_STOP = 6 * CLAIMERS

CLAIMER = textwrap.dedent("""
    import sys, time
    from mailconsole.store import Store, queue
    store = Store(sys.argv[1])
    owner, until = sys.argv[2], float(sys.argv[3])
    n = len(queue.claim(store, owner, 5, 600))
    print("ready", flush=True)
    while time.time() < until:
        n += len(queue.claim(store, owner, 5, 600))
    print(n, flush=True)
""")

STOPPER = textwrap.dedent("""
    import json, random, sys, time
    from mailconsole.store import Actor, Store, accounts
    store = Store(sys.argv[1])
    account, stops = sys.argv[2], int(sys.argv[3])
    who = Actor("race")
    for _ in range(stops):
        time.sleep(random.uniform(0.01, 0.08))
        asked = time.time()
        accounts.commit_stop(store, who, account)
        print(json.dumps({"asked": asked, "done": time.time()}), flush=True)
        time.sleep(random.uniform(0.01, 0.08))
        accounts.resume(store, who, account)
""")


@pytest.fixture
def pg_commit_order(pg_restartable):
    """A database on a server that records commit timestamps (track_commit_timestamp needs a restart)."""
    with pg_restartable.connect() as conn:
        on = conn.execute("SHOW track_commit_timestamp").fetchone()[0] == "on"
        if not on:
            conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
    if not on:
        pg_restartable.restart()
    url = pg_restartable.create_database()
    yield url
    pg_restartable.drop_database(url.rsplit("/", 1)[1])


def _seed(store: Store, account: str, n: int) -> None:
    """A sending mailing of n due messages, written directly (the importer would take minutes)."""
    acc = accounts.ensure_account(store, account)
    with store.write() as conn:
        mid = conn.execute(
            mailings.insert().values(
                account_id=acc, name=f"race {account}", sender="news@example.org", status="sending",
                created_at=0.0, created_by="race", scheduled_at=0.0, recipients=n, expected=n, queued=n,
            ).returning(mailings.c.id)
        ).scalar_one()
        conn.exec_driver_sql(
            "INSERT INTO messages (mailing_id, email, fields, state, due_at, attempts, recovered) "
            f"SELECT {mid}, 'r' || g || '@example.org', '{{}}', 'queued', extract(epoch FROM now()), 0, 0 FROM generate_series(1, {n}) g"
        )


def test_no_claim_commits_after_a_stop_and_no_stop_is_starved(pg_commit_order) -> None:
    pg_url = pg_commit_order
    store = Store(pg_url)
    names = ["north", "south"]
    for name in names:
        _seed(store, name, ROWS_PER_ACCOUNT)
    import time

    until = time.time() + 120  # the claimers stop once the stoppers are done, or then
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, pg_url, f"engine-{i}", str(until)],
                                 stdout=subprocess.PIPE, text=True) for i in range(CLAIMERS)]
    for p in claimers:  # every claimer claims before the first stop
        assert p.stdout.readline().strip() == "ready"
    stoppers = [subprocess.Popen([sys.executable, "-c", STOPPER, pg_url, name, str(STOPS)],
                                 stdout=subprocess.PIPE, text=True) for name in names]
    try:
        asked = {name: [json.loads(line)["asked"] for line in p.communicate(timeout=300)[0].splitlines()]
                 for name, p in zip(names, stoppers)}
        for p in stoppers:
            assert p.returncode == 0
        for p in claimers:
            p.kill()
            p.wait()
    finally:
        for p in claimers + stoppers:
            if p.poll() is None:
                p.kill()
                p.wait()

    with store.read() as conn:
        # Per account: its stops and resumes in commit order, and every claim transaction
        # that claimed something of it, with its commit time.
        events = conn.exec_driver_sql(
            "SELECT account, action, extract(epoch FROM pg_xact_commit_timestamp(xmin)) "
            "FROM audit WHERE action IN ('stop', 'resume') ORDER BY 3"
        ).all()
        claims = conn.exec_driver_sql(
            "SELECT a.name, extract(epoch FROM pg_xact_commit_timestamp(m.xmin)), count(*) "
            "FROM messages m JOIN mailings g ON g.id = m.mailing_id JOIN accounts a ON a.id = g.account_id "
            "WHERE m.state = 'claimed' GROUP BY a.name, m.xmin ORDER BY 2"
        ).all()
    store.close()

    violations = []
    during: list[int] = []
    for name in names:
        mine = [float(t) for acc, t, _n in claims if acc == name]
        assert len(mine) > 10, f"the claimers claimed too little of {name} to race anything"
        stops = [(float(t), act) for acc, act, t in events if acc == name]
        stopped_at = None
        for t, act in stops:
            if act == "stop":
                stopped_at = t
                continue
            violations += [(name, stopped_at, c) for c in mine if stopped_at is not None and stopped_at < c < t]
            stopped_at = None
        if stopped_at is not None:
            violations += [(name, stopped_at, c) for c in mine if c > stopped_at]
        commits = [t for t, act in stops if act == "stop"]
        assert len(commits) == STOPS
        during += [sum(1 for c in mine if a < c < s) for a, s in zip(asked[name], commits)]
    print(f"claims committed while a stop was under way: median {sorted(during)[len(during) // 2]}, "
          f"max {max(during)} over {len(during)} stops")
    assert not violations, f"{len(violations)} claims committed after a stop: {violations[:5]}"
    assert max(during) <= MAX_CLAIMS_DURING_A_STOP, sorted(during)[-5:]
