"""serve --relay-backlog N: at most N of our messages wait at the relay (engine/backlog.py)."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from mailconsole.engine.config import ConfigError
from mailconsole.store import Store, relays

from .conftest import add_mailing, fast_config, running, wait_for
from .test_relay_receipts import QueueingRelay

import pytest


def _agent(store: Store, relay: str) -> None:
    """A relay agent's heartbeat row, as `mailconsole relay-agent` writes it."""
    relays.beat(store, "relay-test", acknowledged={}, counts={}, host="mx", pid=1, kind="postfix", relay=relay,
                started_at=time.time(), state="running", queue_size=0)


def _deliver_all(store: Store, relay: str) -> int:
    """What the agent does when the relay's log says delivered."""
    waiting = relays.to_act_on(store, relay, [])  # nothing is stopped: no rows to act on
    assert waiting == []
    from sqlalchemy import select

    from mailconsole.store.schema import messages

    with store.read() as conn:
        ids = list(conn.execute(select(messages.c.id).where(relays.AT_RELAY)).scalars())
    return relays.apply(store, [relays.Change(i, relays.DELIVERED) for i in ids])


async def test_the_engine_keeps_at_most_n_messages_waiting_at_the_relay(store: Store, tmp_path: Path, smtpd_factory) -> None:
    controller, handler = smtpd_factory(QueueingRelay())
    relay = f"127.0.0.1:{controller.port}"
    _agent(store, relay)
    add_mailing(store, tmp_path, 60)
    config = fast_config(transport=f"smtp://{relay}?starttls=off", workers=4, batch=10, relay_backlog=25)
    async with running(store, config):
        await wait_for(lambda: relays.at_relay(store, relay) >= 25, 20)
        await trio.sleep(0.5)
        assert relays.at_relay(store, relay) == 25 and len(handler.messages) == 25  # no more handed over
        _agent(store, relay)
        assert await trio.to_thread.run_sync(_deliver_all, store, relay) == 25
        await wait_for(lambda: relays.at_relay(store, relay) >= 25, 20)
        await trio.sleep(0.3)
        assert len(handler.messages) == 50


async def test_without_a_live_relay_agent_the_backlog_is_not_limited_and_says_so(store: Store, tmp_path: Path, smtpd_factory) -> None:
    controller, handler = smtpd_factory(QueueingRelay())
    relay = f"127.0.0.1:{controller.port}"
    mid = add_mailing(store, tmp_path, 40)
    config = fast_config(transport=f"smtp://{relay}?starttls=off", workers=4, batch=10, relay_backlog=5)
    async with running(store, config) as engine:
        await wait_for(lambda: len(handler.messages) == 40, 20)
        await wait_for(lambda: "no relay agent reports" in (engine.note or engine._backlog.note or ""), 5)


def test_the_backlog_is_checked_like_every_setting() -> None:
    with pytest.raises(ConfigError):
        fast_config(relay_backlog=0)
