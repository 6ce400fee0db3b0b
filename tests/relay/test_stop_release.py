"""A stop's claims are in the store at once, so the relay's stop does not wait for result batches.

The relay agent honours a stop only once no live engine holds a claim of the
account (store/relays.in_flight). Here the real engine sends to a server that
takes every dot and then answers nothing until the test lets it: each sender is
stuck waiting for its reply, hundreds of claims wait in the engine untouched.
The stop must give all of those back in one transaction while the senders are
still stuck (before, they waited for the senders, then for one result batch
after another); only what the senders took stays claimed. On resume every
message is delivered exactly once: none of those given back is sent by the
engine that held it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import trio

from mailconsole.engine import Engine, EngineConfig
from mailconsole.store import Store, accounts, queue, relays
from mailconsole.store.mailings import get_mailing
from postfix import NextHop, NextHopServer
from scenario import OPERATOR, add_mailing

WORKERS = 2
BATCH = 100  # two claims' worth wait in the engine: far more than one result batch


class HeldReplies(NextHop):
    """Takes each message's dot, answers it only once `answer` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()
        self.dots = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.dots += 1
        while not self.answer.is_set():
            await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


class Observed(Engine):
    """The real engine; the test notes each write transaction it makes, and what it released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.released: list[int] = []  # per write that gave claims back: how many

    async def _write(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = await super()._write(fn, *args, **kwargs)
        if fn is queue.record:
            if n := sum(1 for o in args[2] if o.kind == "release"):  # type: ignore[attr-defined]
                self.released.append(n)
        return result


async def until(predicate, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(predicate):
            await trio.sleep(0.01)


async def test_a_stop_gives_back_every_claim_no_sender_took_in_one_transaction(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store.db"))
    hop = HeldReplies()
    server = NextHopServer(hop)
    server.start()
    mid = add_mailing(store, tmp_path, 600)
    config = EngineConfig(transport=f"smtp://127.0.0.1:{server.port}?starttls=off", workers=WORKERS, batch=BATCH,
                          idle_claim_interval=0.02, heartbeat_interval=0.2, data_timeout=120.0,
                          command_timeout=120.0)
    engine = Observed(store, config)
    account = accounts.state(store).id

    def claimed() -> int:
        return relays.in_flight(store, [account], [engine.engine_id]).get(account, 0)

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            # Each sender past its dot (waiting for the reply), one more prepared; the
            # senders' channel full and the claimer's next batch in hand.
            await until(lambda: hop.dots == WORKERS and claimed() > BATCH + 2 * WORKERS, "claims piling up")
            await trio.sleep(0.2)  # the claimer's second batch, if it is coming
            before = claimed()
            assert engine.released == []
            stop = await trio.to_thread.run_sync(accounts.stop, store, OPERATOR)
            engine.nudge()
            # The senders are still stuck on their replies: only what they took stays claimed.
            await until(lambda: claimed() <= 2 * WORKERS, "the untaken claims given back", 30)
            assert not hop.answer.is_set() and len(hop.deliveries) == 0
            assert engine.released[0] >= before - 2 * WORKERS, engine.released  # all at once
            assert len(engine.released) == 1
            await until(lambda: engine.acknowledged.get(account, 0) >= stop.generation, "the engine's acknowledgement")
            hop.answer.set()
            await until(lambda: claimed() == 0, "the senders' own recorded")
            await trio.to_thread.run_sync(accounts.resume, store, OPERATOR)
            await until(lambda: get_mailing(store, mid).sent == 600, "every message sent after the resume")
            engine.request_stop()
    finally:
        server.stop()
    twice = {r: n for r, n in Counter(hop.recipients()).items() if n > 1}
    assert twice == {} and len(hop.recipients()) == 600
    store.close()
