"""The end-of-run checks behind promises 2, 3 and 4, shared by every fault scenario.

A scenario ends with every engine stopped (or its leases expired); then:
  2. every message is sent, failed with a reason, suspended, or its mailing deleted;
     nothing is still queued or claimed;
  3. a message the server accepted more than once, or accepted while the store
     does not say sent, is counted as possibly delivered (`recovered`: taken back
     from a dead engine, or its dot got no reply);
  4. each mailing's counters equal its messages' actual states.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from mailconsole.store import Store
from mailconsole.store.mailings import DELETED
from mailconsole.store.schema import mailings, messages
from mailconsole.store.verify import mismatches

_MESSAGE_ID = re.compile(rb"^Message-ID: <m(\d+)\.\d+(?:\.[a-z2-7]+)?@", re.MULTILINE | re.IGNORECASE)


def message_id_of(data: bytes) -> int:
    """The store's message id from the Message-ID header the engine writes (stable per message)."""
    found = _MESSAGE_ID.search(data)
    assert found, "a delivered message without the engine's Message-ID"
    return int(found.group(1))


def deliveries(datas: Iterable[bytes]) -> Counter[int]:
    """Message id -> how many times the server accepted it."""
    return Counter(message_id_of(d) for d in datas)


@dataclass(frozen=True)
class Accounting:
    states: Counter[str]
    recovered: int  # messages taken back from a dead engine at least once
    duplicates: int  # messages the server accepted more than once
    extra_copies: int  # accepted copies beyond the first


def check(store: Store, accepted: Counter[int] | None = None) -> Accounting:
    """Assert promises 2-4 on the whole store; `accepted` is what the SMTP server took (if known)."""
    with store.read() as conn:
        live = {r.id for r in conn.execute(select(mailings.c.id).where(mailings.c.status != DELETED))}
        rows = conn.execute(
            select(messages.c.id, messages.c.mailing_id, messages.c.state, messages.c.last_error, messages.c.recovered)
        ).all()
    rows = [r for r in rows if r.mailing_id in live]
    states = Counter(r.state for r in rows)
    # Promise 2: nothing silently lost, nothing stuck.
    assert set(states) <= {"sent", "failed", "suspended"}, f"unfinished messages: {states}"
    no_reason = [r.id for r in rows if r.state == "failed" and not r.last_error]
    assert not no_reason, f"failed without a reason: {no_reason[:10]}"
    # Promise 4: the counters the console shows are the real states.
    assert mismatches(store) == []
    out = Accounting(states, sum(1 for r in rows if r.recovered), 0, 0)
    if accepted is None:
        return out
    by_id = {r.id: r for r in rows}
    sent = {r.id for r in rows if r.state == "sent"}
    unknown = set(accepted) - set(by_id)
    assert not unknown, f"the server accepted messages the store does not know: {sorted(unknown)[:10]}"
    missing = sent - set(accepted)
    assert not missing, f"marked sent but never accepted by the server: {sorted(missing)[:10]}"
    # Accepted but then retried and failed (or never heard of): only if counted as possibly delivered.
    unrecorded = {mid for mid in set(accepted) - sent if not by_id[mid].recovered}
    assert not unrecorded, f"accepted by the server, not marked sent nor possibly delivered: {sorted(unrecorded)[:10]}"
    # Promise 3: duplicates only among messages whose lease was taken back.
    dups = {mid for mid, n in accepted.items() if n > 1}
    unexplained = {mid for mid in dups if not by_id[mid].recovered}
    assert not unexplained, f"duplicates of messages never recovered: {sorted(unexplained)[:10]}"
    return Accounting(states, out.recovered, len(dups), sum(n - 1 for n in accepted.values()))
