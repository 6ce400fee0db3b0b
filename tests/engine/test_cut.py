"""A pause or a stop ends the transactions it covers at once, however slowly the server answers.

The server here greets and answers EHLO, then never answers MAIL FROM: each
sender waits in its transaction, well before the dot. Nothing of those
transactions can have been accepted, so they are cut and their messages go back
to the queue as they were, rather than when the command's deadline runs out.
"""

from __future__ import annotations

import trio

from mailconsole.store import accounts
from mailconsole.store.mailings import pause

from .conftest import OPERATOR, add_mailing, fast_config, mailing, running, wait_for

# s: a cut takes milliseconds; without it the claims come back only when the command
# deadline below (30 s) runs out. The rest is room for a loaded machine.
WITHIN = 10.0


async def mute_after_ehlo(stream: trio.SocketStream, waiting: list[int], closed: list[float]) -> None:
    try:
        await stream.send_all(b"220 mute\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += await stream.receive_some(1000)
        await stream.send_all(b"250-mute\r\n250 PIPELINING\r\n")
        waiting.append(len(await stream.receive_some(65536)))  # MAIL, RCPT, DATA: never answered
        while await stream.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    closed.append(trio.current_time())


async def test_pause_and_stop_cut_transactions_waiting_on_the_server(store, tmp_path):
    paused = add_mailing(store, tmp_path, 2, name="paused")
    other = add_mailing(store, tmp_path, 2, name="other")
    waiting: list[int] = []
    closed: list[float] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, lambda s: mute_after_ehlo(s, waiting, closed), 0)
        port = listeners[0].socket.getsockname()[1]
        cfg = fast_config(transport=f"smtp://127.0.0.1:{port}?starttls=off", workers=4, command_timeout=30.0)
        async with running(store, cfg) as engine:
            await wait_for(lambda: engine.held == 4 and len(waiting) == 4, what="four transactions waiting")
            await trio.to_thread.run_sync(pause, store, OPERATOR, paused)
            start = trio.current_time()
            await wait_for(lambda: engine.held == 2, WITHIN, "the paused mailing's claims back")
            assert (await mailing(store, paused)).in_flight == 0
            assert (await mailing(store, other)).in_flight == 2  # not covered by the pause: still waiting
            await trio.to_thread.run_sync(accounts.stop, store, OPERATOR)
            await wait_for(lambda: engine.held == 0, WITHIN, "every claim back")
            print(f"\ncut {trio.current_time() - start:.3f} s after the pause")
        nursery.cancel_scope.cancel()
    assert len(closed) == 4  # each cut closed its connection: the server drops the transaction
    for mid in (paused, other):
        m = await mailing(store, mid)
        assert (m.sent, m.failed, m.in_flight, m.queued) == (0, 0, 0, 2)
