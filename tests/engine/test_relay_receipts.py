"""The engine records, per message, the relay it was handed to and the relay's queue id."""

from __future__ import annotations

import itertools
from pathlib import Path

from sqlalchemy import select

from .conftest import RecordingHandler, add_mailing, fast_config, running, wait_done
from mailconsole.store import Store
from mailconsole.store.schema import messages


class QueueingRelay(RecordingHandler):
    """Answers each dot as a Postfix relay does, naming a new queue id."""

    def __init__(self, form: str = "250 2.0.0 Ok: queued as Q{n:06d}") -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.form = form

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await super().handle_DATA(server, session, envelope)
        return self.form.format(n=next(self._ids))


def relay_rows(store: Store, mailing_id: int) -> list[tuple]:
    with store.read() as conn:
        return conn.execute(
            select(messages.c.relay, messages.c.relay_queue_id, messages.c.relay_state, messages.c.relay_note)
            .where(messages.c.mailing_id == mailing_id).order_by(messages.c.id)
        ).all()


async def test_each_sent_message_records_the_relay_and_its_queue_id(store: Store, tmp_path: Path, smtpd_factory) -> None:
    controller, _ = smtpd_factory(QueueingRelay())
    mid = add_mailing(store, tmp_path, 20)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{controller.port}?starttls=off", workers=3)):
        await wait_done(store, mid)
    rows = relay_rows(store, mid)
    assert {r[0] for r in rows} == {f"127.0.0.1:{controller.port}"}
    assert sorted(r[1] for r in rows) == [f"Q{n:06d}" for n in range(1, 21)]  # one id each, none lost or doubled
    assert {r[2] for r in rows} == {"queued"} and {r[3] for r in rows} == {None}


async def test_a_reply_naming_no_queue_id_is_kept_raw_and_not_followed(store: Store, tmp_path: Path, smtpd_factory) -> None:
    controller, _ = smtpd_factory(QueueingRelay("250 2.0.0 thanks"))
    mid = add_mailing(store, tmp_path, 3)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{controller.port}?starttls=off")):
        await wait_done(store, mid)
    assert relay_rows(store, mid) == [(f"127.0.0.1:{controller.port}", None, None, "250 2.0.0 thanks")] * 3


async def test_a_transport_without_a_relay_records_none(store: Store, tmp_path: Path) -> None:
    mid = add_mailing(store, tmp_path, 3)
    async with running(store, fast_config(transport=f"maildir:{tmp_path / 'box'}")):
        await wait_done(store, mid)
    assert relay_rows(store, mid) == [(None, None, None, None)] * 3
