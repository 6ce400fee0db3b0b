"""The maintained counters always equal the message rows, whatever the sequence of operations.

A hypothesis state machine drives claims, outcomes, lease expiry, stop/resume
of two accounts (with time jumps on both sides of the 7-day rule), pause, requeue,
reschedule, template saves, delete, purge and suppressions (added and removed
mid-send) on a real SQLite store, and after
every step compares each mailing's counters with `SELECT state, count(*) ...
GROUP BY state` (and `verify.mismatches`, the recount the reliability suite
uses), each revision's sent count with the messages sent with it, checks that
statuses agree with the counters, and that nothing of a stopped account can be
claimed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule
from storehelp import ALICE, SENDER, assert_counters_match, recipients, write_recipients

from mailconsole.store import InvalidInput, NotFound, Refused, Store, accounts, mailings, queue, revisions, suppressions, verify
from mailconsole.store.importer import create_mailing
from mailconsole.store.queue import Outcome

DAY = 86400.0
OWNERS = ("e1", "e2")
ACCOUNTS = st.sampled_from(["default", "other"])
KINDS = st.sampled_from(["sent", "failed", "retry", "release"])


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class QueueMachine(RuleBasedStateMachine):
    claims = Bundle("claims")

    @initialize()
    def open_store(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.clock = Clock()
        self.store = Store(str(Path(self.dir.name) / "store.db"), clock=self.clock)
        self.created = 0
        accounts.ensure_account(self.store, "other")
        self.create(5, later=False, account="other")
        self.create(5, later=False)  # something to claim from the first step on

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    def live_ids(self) -> list[tuple[int, str]]:
        return [(m.id, acc) for acc in ("default", "other") for m in mailings.list_mailings(self.store, acc, planned=True)]

    @rule(n=st.integers(1, 6), later=st.booleans(), account=ACCOUNTS)
    def create(self, n: int, later: bool, account: str = "default") -> None:
        self.created += 1
        path = write_recipients(Path(self.dir.name) / f"r{self.created}.csv", recipients(n))
        create_mailing(
            self.store, ALICE, name=f"m{self.created}", sender=SENDER, subject="Hi {{ name }}", text_body="x",
            html_body=None, recipients=path, at=self.clock.now + 3600 if later else None, batch_size=4,
            account=account,
        )

    def outcomes(self, claimed, kind: str) -> list[Outcome]:
        out = []
        for c in claimed:
            rev = revisions.newest_revision(self.store, c.mailing_id)
            out.append(Outcome(c.id, c.mailing_id, kind, revision_id=rev.id if rev else None,
                               error=None if kind == "sent" else "451 later", retry_at=self.clock.now + 30))
        return out

    @rule(owner=st.sampled_from(OWNERS), limit=st.integers(1, 5), kind=KINDS)
    def claim_and_record(self, owner: str, limit: int, kind: str) -> None:
        """The engine's usual path: claim a batch and report it right away."""
        claimed = queue.claim(self.store, owner, limit, lease_seconds=7200)
        self.assert_none_suppressed(claimed)
        queue.record(self.store, owner, self.outcomes(claimed, kind))

    @rule(target=claims, owner=st.sampled_from(OWNERS), limit=st.integers(1, 5), lease=st.sampled_from([30, 7200]))
    def claim(self, owner: str, limit: int, lease: float):
        """Claims held across other steps, reported later (or never: lease expiry)."""
        got = queue.claim(self.store, owner, limit, lease_seconds=lease)
        self.assert_none_suppressed(got)
        return (owner, got)

    @rule(held=consumes(claims), kind=KINDS, lost=st.sampled_from([False, False, False, True]))
    def record(self, held, kind: str, lost: bool) -> None:
        owner, claimed = held
        # Reporting under another engine's name models a lost lease: it must change nothing.
        queue.record(self.store, "intruder" if lost else owner, self.outcomes(claimed, kind))

    @rule(seconds=st.sampled_from([10, 3600, 8 * DAY]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        queue.promote_due(self.store)

    @rule()
    def expire(self) -> None:
        queue.expire_leases(self.store)

    @rule(owner=st.sampled_from(OWNERS))
    def release_all(self, owner: str) -> None:
        queue.release_all(self.store, owner)

    @rule(account=ACCOUNTS)
    def stop(self, account: str) -> None:
        accounts.stop(self.store, ALICE, account)

    # 6.99 and 7.01 days: just inside and just past the 7-day rule.
    @rule(days=st.sampled_from([0.5, 3.0, 6.99, 7.01, 8.0]), account=ACCOUNTS)
    def incident(self, days: float, account: str) -> None:
        """The whole story in one step: stop, wait (maybe past the 7-day limit), resume."""
        accounts.stop(self.store, ALICE, account)
        self.clock.advance(days * DAY)
        self.resume(7.0, account)

    @rule(max_age=st.sampled_from([1.0, 7.0]), account=ACCOUNTS)
    def resume(self, max_age: float, account: str) -> None:
        preview = accounts.resume_preview(self.store, account, max_age_days=max_age)
        done = accounts.resume(self.store, ALICE, account, max_age_days=max_age)
        if preview.stopped:  # nothing happened in between: the preview was exact
            assert (done.to_send, done.to_suspend) == (preview.to_send, preview.to_suspend)

    @rule(pick=st.integers(0, 50), action=st.sampled_from(["pause", "unpause", "requeue", "delete", "delete", "reschedule"]))
    def operate(self, pick: int, action: str) -> None:
        ids = self.live_ids()
        if not ids:
            return
        mid, account = ids[pick % len(ids)]
        fn = {"pause": mailings.pause, "unpause": mailings.unpause,
              "requeue": mailings.requeue_suspended, "delete": mailings.delete_mailing,
              "reschedule": lambda store, actor, mid, account: mailings.reschedule(
                  store, actor, mid, self.clock.now + 60, account)}[action]
        try:
            fn(self.store, ALICE, mid, account)
        except (Refused, NotFound):
            pass  # refusals are fine; what matters is that they changed nothing

    @rule(pick=st.integers(0, 50), subject=st.sampled_from(["Hi {{ name }}", "Fixed {{ name }}", "Plain", "{{ nosuch }}"]))
    def save_template(self, pick: int, subject: str) -> None:
        """A corrected template: outcomes from now on count for the new revision (a bad one is refused)."""
        ids = self.live_ids()
        if not ids:
            return
        mid, account = ids[pick % len(ids)]
        try:
            revisions.save_revision(self.store, ALICE, mid, subject=subject, account=account)
        except (InvalidInput, Refused, NotFound):
            pass

    @rule(i=st.integers(0, 6), account=ACCOUNTS, remove=st.booleans())
    def suppress(self, i: int, account: str, remove: bool) -> None:
        """Suppressed mid-send: the next claim moves its queued messages to 'suppressed'."""
        address = f"user{i}@Example.NET"  # the domain's case does not matter
        if remove:
            suppressions.remove(self.store, ALICE, address, account)
        else:
            suppressions.add(self.store, ALICE, address, "test", account)

    def assert_none_suppressed(self, claimed) -> None:
        """No claim returns a message whose address its account has suppressed."""
        with self.store.read() as conn:
            blocked = set(conn.exec_driver_sql(
                "SELECT g.id, s.email FROM suppressions s JOIN mailings g ON g.account_id = s.account_id").all())
        assert not [c for c in claimed if (c.mailing_id, c.email) in blocked]

    @rule(max_batches=st.sampled_from([1, None]))
    def purge(self, max_batches) -> None:
        mailings.purge_deleted(self.store, batch=3, max_batches=max_batches)

    @invariant()
    def counters_equal_rows(self) -> None:
        assert_counters_match(self.store)
        assert verify.mismatches(self.store) == []

    @invariant()
    def sent_counted_per_revision(self) -> None:
        """What the console shows as "sent with revision N" equals the messages sent with it."""
        with self.store.read() as conn:
            kept = dict(conn.exec_driver_sql("SELECT id, sent FROM revisions").all())
            real = dict(conn.exec_driver_sql(
                "SELECT revision_id, count(*) FROM messages WHERE state = 'sent' GROUP BY revision_id").all())
        assert kept == {rid: real.get(rid, 0) for rid in kept}

    @invariant()
    def status_agrees_with_counters(self) -> None:
        """'sent' means nothing is left to send; 'sending' means something is (no mailing stuck)."""
        for m in (m for acc in ("default", "other") for m in mailings.list_mailings(self.store, acc, planned=True)):
            if m.status == "sent":
                assert m.queued == m.in_flight == 0, m
            if m.status == "sending":
                assert m.queued + m.in_flight > 0, m

    @invariant()
    def nothing_claimable_while_stopped(self) -> None:
        """A probe claims all it can: nothing of a stopped account; then it hands everything back."""
        stopped = {accounts.state(self.store, acc).id for acc in ("default", "other") if accounts.state(self.store, acc).stopped}
        if not stopped:
            return
        got = queue.claim(self.store, "probe", 1000, 60)
        with self.store.read() as conn:
            owners = dict(conn.exec_driver_sql("SELECT id, account_id FROM mailings").all())
        assert not [c for c in got if owners[c.mailing_id] in stopped]
        queue.record(self.store, "probe", [Outcome(c.id, c.mailing_id, "release") for c in got])


QueueMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCounters = QueueMachine.TestCase
