"""SMTP faults: a server that refuses, stalls, hangs up and vanishes at random.

Promises 2-4 must hold, and each message's end state must match what the server
did to it: a 5xx reply to the transaction fails the message with that reply's text;
a 4xx reply or a lost connection is retried; a refusal of the whole connection
(greeting, EHLO) never fails a message; a message that runs out of attempts fails
saying so.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
import trio

from mailconsole.store import policy

from engine.conftest import OPERATOR, add_mailing, fast_config, message_rows, running, wait_done

from . import accounting
from .faultserver import FaultServer

pytestmark = pytest.mark.slow  # a live server and seconds of retries

MAX_ATTEMPTS = 6
TOKEN = re.compile(r"\bF\d+\b")


def expected_failure(email: str, attempts: int, error: str, faults: dict) -> str | None:
    """Why this failure is wrong, or None if it matches what the server did."""
    if error.endswith(f"(gave up after {MAX_ATTEMPTS} attempts)"):
        if attempts != MAX_ATTEMPTS:
            return f"gave up after {attempts} attempts, not {MAX_ATTEMPTS}"
        tokens = TOKEN.findall(error)
        if tokens and faults[tokens[0]].code >= 500:
            return "a permanent reply was retried"
        return None
    tokens = TOKEN.findall(error)
    if not tokens:
        return "failed without a server reply behind it"
    fault = faults[tokens[0]]
    if fault.stage in ("greeting", "EHLO"):
        return f"failed on a refusal of the whole connection {fault}: the server's problem, not the recipient's"
    if fault.code < 500:
        return f"failed at once on a temporary reply {fault}"
    if fault.rcpt not in (None, email):
        return f"failed with another recipient's reply {fault}"
    if str(fault.code) not in error:
        return "the reason lacks the reply code"
    return None


async def test_random_smtp_faults(store, tmp_path: Path):
    seed = int(os.environ.get("TORTURE_SEED", random.randrange(1 << 30)))
    print(f"\nseed {seed}")
    # Besides the random faults, some recipients are always deferred and some always
    # refused, so that running out of attempts and a permanent refusal happen every run.
    deferred = {f"user{i}@example.net" for i in range(1, 7)}
    refused = {"user7@example.net", "user8@example.net"}
    server = FaultServer(random.Random(seed), refuse={**dict.fromkeys(deferred, 451), **dict.fromkeys(refused, 550)})
    n = 400
    # The faults are many more than a healthy mailing sees: the automatic pause would
    # (rightly) stop this one. What is tested here is each message's end state.
    policy.set_values(store, OPERATOR, {"auto_pause": "off", "auto_stop": "off"})
    mid = add_mailing(store, tmp_path, n)
    config = fast_config(
        transport="", workers=4, max_attempts=MAX_ATTEMPTS, retry_base=0.05, retry_max=0.4,
        connect_timeout=3.0, command_timeout=3.0, data_timeout=3.0, lease_seconds=5.0,
    )
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.run)
        config.transport = f"smtp://127.0.0.1:{port}?starttls=off"
        async with running(store, config):
            with trio.fail_after(60):
                while len(server.accepted) < n // 3:
                    await trio.sleep(0.05)
            await server.vanish(1.0)
            await wait_done(store, mid, timeout=120)
        nursery.cancel_scope.cancel()
    faults = server.by_token()
    rows = message_rows(store, mid)
    wrong = {}
    for email, (state, attempts, error, _recovered) in rows.items():
        if state == "failed":
            why = expected_failure(email, attempts, error or "", faults)
            if why:
                wrong[email] = (why, error)
    assert not wrong, wrong
    # Every permanent reply to a known recipient failed that recipient, with that reply.
    for f in faults.values():
        if f.code >= 500 and f.rcpt is not None and f.token in server.seen:
            state, _, error, _ = rows[f.rcpt]
            assert state == "failed" and f.token in error, (f, rows[f.rcpt], [g for g in faults.values() if g.rcpt == f.rcpt])
    # (A random 5xx to MAIL or DATA may fail one of them first.)
    gave_up = [e for e in deferred if rows[e][2].endswith(f"(gave up after {MAX_ATTEMPTS} attempts)")]
    assert gave_up and all(rows[e][:2] == ("failed", MAX_ATTEMPTS) for e in gave_up)
    assert all(rows[e][0] == "failed" and "always refused" in rows[e][2] for e in refused if " 5" not in rows[e][2][:20])
    assert all(rows[e][0] == "failed" for e in deferred | refused)
    report = accounting.check(store, accounting.deliveries(body for _, body in server.accepted))
    kinds = {}
    for f in faults.values():
        kinds[f"{f.stage} {f.code or ''}".strip()] = kinds.get(f"{f.stage} {f.code or ''}".strip(), 0) + 1
    print(f"faults injected: {dict(sorted(kinds.items()))}")
    print(f"end states: {dict(report.states)}; duplicates at the server: {report.duplicates} "
          f"(counted as possibly delivered: {report.recovered})")
