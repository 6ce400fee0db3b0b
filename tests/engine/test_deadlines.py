"""A server that stops answering is cut off by the command and data deadlines, through the engine.

The engine enforces the SMTP deadlines of its transactions with one watchdog
task rather than a cancel scope per transaction; these tests run a real engine
against servers that go silent before and after the dot, and check that each
transaction ends at its deadline with the right outcome.
"""

from __future__ import annotations

import trio

from .conftest import add_mailing, fast_config, mailing, message_rows, running, wait_for

DEADLINE = 0.5  # s; the watchdog looks every 50 ms


async def _greet(stream: trio.SocketStream, extensions: bytes) -> bytes:
    await stream.send_all(b"220 slow\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += await stream.receive_some(1000)
    await stream.send_all(extensions)
    return b""


async def _drain(stream: trio.SocketStream, closed: list[float]) -> None:
    try:
        while await stream.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    closed.append(trio.current_time())


async def mute_after_ehlo(stream: trio.SocketStream, closed: list[float]) -> None:
    """Greets, answers EHLO, then never answers anything."""
    await _greet(stream, b"250-slow\r\n250 PIPELINING\r\n")
    await _drain(stream, closed)


async def mute_after_dot(stream: trio.SocketStream, closed: list[float]) -> None:
    """Takes the envelope and the body, then never answers the dot."""
    await _greet(stream, b"250-slow\r\n250 PIPELINING\r\n")
    buf = b""
    try:
        while buf.count(b"\r\n") < 3:  # MAIL, RCPT, DATA
            buf += await stream.receive_some(65536)
        await stream.send_all(b"250 ok\r\n250 ok\r\n354 go\r\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    await _drain(stream, closed)


async def _run(store, tmp_path, handler, **timeouts: float):  # type: ignore[no-untyped-def]
    mid = add_mailing(store, tmp_path, 2)
    closed: list[float] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, lambda s: handler(s, closed), 0)
        port = listeners[0].socket.getsockname()[1]
        cfg = fast_config(transport=f"smtp://127.0.0.1:{port}?starttls=off", workers=2, max_attempts=1, **timeouts)
        async with running(store, cfg):
            start = trio.current_time()
            await wait_for(lambda: len(closed) >= 2, 10, "both connections cut")
            took = trio.current_time() - start
            await wait_for(lambda: all(r[0] == "failed" for r in message_rows(store, mid).values()), 10, "both recorded")
        nursery.cancel_scope.cancel()
    return mid, took


async def test_a_server_silent_before_the_dot_is_cut_at_the_command_deadline(store, tmp_path):
    mid, took = await _run(store, tmp_path, mute_after_ehlo, command_timeout=DEADLINE)
    assert DEADLINE <= took < DEADLINE + 3.0, took
    for state, _attempts, error, recovered in message_rows(store, mid).values():
        assert state == "failed" and "timeout" in error and recovered == 0, error


async def test_a_server_silent_after_the_dot_is_cut_at_the_data_deadline(store, tmp_path):
    mid, took = await _run(store, tmp_path, mute_after_dot, command_timeout=30.0, data_timeout=DEADLINE)
    assert DEADLINE <= took < DEADLINE + 3.0, took
    for state, _attempts, error, recovered in message_rows(store, mid).values():
        # After the dot: the server may have taken it, so it counts as possibly delivered.
        assert state == "failed" and "timeout" in error and recovered == 1, (error, recovered)
    assert (await mailing(store, mid)).recovered == 2
