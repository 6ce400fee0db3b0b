"""The recipients export equals what the SMTP server received, revision by revision.

A mailing goes out through the real engine to aiosmtpd; midway it is paused, its
template corrected (revision 2), and resumed. The export of revision 1 must list
exactly the addresses and Message-IDs the server received with revision 1's
subject, and that of revision 2 the rest.
"""

from __future__ import annotations

import trio

from mailconsole.store import mailings, recipients, revisions
from mailconsole.store.mailings import get_mailing

from .conftest import OPERATOR, add_mailing, fast_config, parse, running, wait_done, wait_for

FAULTY = "30% off for {{ name }}"
CORRECTED = "20% off for {{ name }}"


def received_with(handler, subject_start: str) -> set[tuple[str, str]]:
    """(recipient, Message-ID) of every message the server accepted whose subject starts so."""
    out = set()
    for m in handler.messages:
        msg = parse(m.data)
        if msg["Subject"].startswith(subject_start):
            out |= {(rcpt, msg["Message-ID"]) for rcpt in m.rcpt_tos}
    return out


def exported(store, mid: int, revision: int | None = None, **options: object) -> set[tuple[str, str]]:
    return {(r.email, r.message_id) for r in recipients.iter_recipients(store, mid, revision=revision, **options)}


async def test_the_export_of_the_faulty_revision_is_what_the_server_got_with_it(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 40, subject=FAULTY)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=2, rate=40)):
        await wait_for(lambda: get_mailing(store, mid).sent >= 10, what="the first messages out")
        await trio.to_thread.run_sync(mailings.pause, store, OPERATOR, mid)
        await wait_for(lambda: get_mailing(store, mid).in_flight == 0, what="nothing in flight")
        await trio.to_thread.run_sync(lambda: revisions.save_revision(store, OPERATOR, mid, subject=CORRECTED))
        await trio.to_thread.run_sync(mailings.unpause, store, OPERATOR, mid)
        m = await wait_done(store, mid)
    assert (m.sent, m.failed) == (40, 0)
    faulty, corrected = received_with(handler, "30% off"), received_with(handler, "20% off")
    assert faulty and corrected and len(faulty) + len(corrected) == 40
    assert exported(store, mid, 1) == faulty
    assert exported(store, mid, 2) == corrected
    # The CSV holds the same, in the same form.
    out = tmp_path / "faulty.csv"
    assert recipients.write_csv(store, mid, out, revision=1) == len(faulty)
    lines = out.read_text(encoding="utf-8").splitlines()[1:]
    assert {(line.split(",")[0], line.split(",")[5]) for line in lines} == faulty


async def test_an_engine_with_its_own_message_domain_matches_the_export_given_it(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 5)
    config = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=2, message_domain="mx.example.org")
    async with running(store, config):
        await wait_done(store, mid)
    got = received_with(handler, "Hello")
    assert len(got) == 5 and all(i.endswith("@mx.example.org>") for _, i in got)
    assert exported(store, mid, message_domain="mx.example.org") == got
    assert exported(store, mid) != got  # without it: the sender's domain, as an engine without the setting
