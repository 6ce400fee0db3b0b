"""One read of everything the console shows, taken in a worker thread.

The read uses only maintained counters and heartbeats (`store.status.overview`),
never a count over the message table, so it costs the same with a million
messages queued as with none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import Store
from ..store.auto_pause import Trip, open_trips
from ..store.policy import Policy
from ..store.policy import get as get_policy
from ..store.audit import AuditEntry, entries
from ..store.mailings import PLANNED, Mailing, revision_counts
from ..store.status import AccountSummary, Overview, all_accounts, overview

AUDIT_ROWS = 200


@dataclass(frozen=True)
class Snapshot:
    """What the store said at one moment (`taken_at`, by the console's clock)."""

    taken_at: float
    overview: Overview
    # None when not read this time (the audit pane is hidden): the app keeps the last one.
    audit: list[AuditEntry] | None = None
    # Per-revision sent counts, read only for the mailing the operator selected.
    revisions: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    # Every account in one line each (the account picker): counters only, like the overview.
    accounts: list[AccountSummary] = field(default_factory=list)
    # The automatic pauses and stops of the account no operator has acknowledged
    # (a banner on every screen until then), and the store's policy (Settings).
    trips: tuple[Trip, ...] = ()
    policy: Policy = field(default_factory=Policy)

    @property
    def account(self) -> str:
        """The account this snapshot is about: one read for another is never shown."""
        return self.overview.account.name

    @property
    def stopped(self) -> bool:
        return self.overview.account.stopped

    @property
    def mailings(self) -> list[Mailing]:
        return self.overview.mailings

    @property
    def planned(self) -> list[Mailing]:
        return sorted((m for m in self.mailings if m.status == PLANNED), key=lambda m: (m.scheduled_at, m.id))

    def mailing(self, mailing_id: int | None) -> Mailing | None:
        return next((m for m in self.mailings if m.id == mailing_id), None)


def read_snapshot(
    store: Store, account: str, now: float, selected: int | None = None, *, audit: bool = True
) -> Snapshot:
    """Blocking: call from a worker thread. Reads only what is asked, to leave the CPU to the engine."""
    ov = overview(store, account)
    revs = {selected: revision_counts(store, selected)} if selected is not None else {}
    log = entries(store, limit=AUDIT_ROWS, account=account) if audit else None
    # Two primary-key reads of the key/value table: as cheap as the counters.
    return Snapshot(now, ov, log, revs, all_accounts(store), tuple(open_trips(store, account)), get_policy(store))
