"""On PostgreSQL, an engine frozen inside a transaction cannot hold a stop up.

A claim holds its account's shared advisory lock until it commits; the stop takes the
same lock exclusively. An engine frozen (SIGSTOP, a host cut off) between the claim's
first statement and its commit keeps its TCP connection, and once held the lock until
that process ran again: in one run a stop waited a whole minute behind it. The server
now ends a session idle inside a transaction, and the stop goes through.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from store_backend import ON_POSTGRESQL
from storehelp import ALICE
from mailconsole.store import accounts
from mailconsole.store.backends.postgresql import IDLE_IN_TRANSACTION_MS
from mailconsole.store.errors import StoreBusy

pytestmark = pytest.mark.skipif(not ON_POSTGRESQL, reason="advisory locks and sessions are PostgreSQL's")


def test_a_claim_frozen_halfway_does_not_hold_the_stop_up(store, make_mailing) -> None:
    make_mailing(3)
    frozen = store.engine.connect()  # a session as every engine opens it
    frozen.begin()
    assert store.backend.claim_guard(frozen)  # the shared lock a claim holds: then nothing more
    waited: list[float] = []

    def give_up_late(busy: StoreBusy, seconds: float) -> None:
        waited.append(seconds)
        if seconds > 15:
            raise RuntimeError(f"the stop waited {seconds:.1f} s behind a frozen claim") from busy

    started = time.monotonic()
    try:
        done = accounts.stop(store, ALICE, on_wait=give_up_late, intent=False, bound=0.5)
        took = time.monotonic() - started
        assert done.stopped
        # The server ends the frozen session after its idle limit; the stop's retry
        # slice comes on top of that.
        assert took < IDLE_IN_TRANSACTION_MS / 1000 + 5, (took, waited)
        # And the frozen session is gone: its next statement is refused.
        with pytest.raises(sa.exc.DBAPIError):
            frozen.execute(sa.text("SELECT 1"))
    finally:
        frozen.invalidate()
        frozen.close()
