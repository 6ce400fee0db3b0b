"""What a server may send the SMTP client is bounded, and each command has one deadline.

Each test scripts a server on a real loopback socket and opens the engine's
SMTPConnection against it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio

from mailconsole.engine.smtp import (
    MAX_ERROR_TEXT, MAX_REPLY_BYTES, MAX_REPLY_LINE, MAX_REPLY_LINES, ReplyTooLarge, SMTPConnection, SMTPError,
    SMTPSettings,
)

Script = Callable[[trio.SocketStream], Awaitable[None]]


async def start_server(nursery: trio.Nursery, script: Script) -> int:
    async def handle(stream: trio.SocketStream) -> None:
        try:
            await script(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


def settings(port: int, timeout: float = 5.0) -> SMTPSettings:
    return SMTPSettings("127.0.0.1", port, starttls="off", connect_timeout=timeout, command_timeout=timeout)


def ehlo_reply(*lines: bytes) -> Script:
    """Greets, and answers EHLO with these lines (the last one without the dash)."""
    async def script(stream: trio.SocketStream) -> None:
        await stream.send_all(b"220 scripted\r\n")
        await stream.receive_some(1000)
        body = b"".join(b"250-" + line + b"\r\n" for line in lines[:-1]) + b"250 " + lines[-1] + b"\r\n"
        await stream.send_all(body)
        await trio.sleep_forever()

    return script


async def open_against(script: Script, timeout: float = 5.0) -> SMTPConnection:
    """The opened connection, or the client's SMTPError (raised outside the server's nursery)."""
    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, script)
        try:
            result: SMTPConnection | SMTPError = await SMTPConnection.open(settings(port, timeout))
        except SMTPError as exc:
            result = exc
        nursery.cancel_scope.cancel()
    if isinstance(result, SMTPError):
        raise result
    return result


async def test_a_reply_within_the_bounds_is_read():
    lines = [b"x" * (MAX_REPLY_LINE - 4)] * 10 + [b"PIPELINING"] * (MAX_REPLY_LINES - 11) + [b"8BITMIME"]
    conn = await open_against(ehlo_reply(*lines))
    assert "PIPELINING" in conn.extensions and "8BITMIME" in conn.extensions
    await conn.abort()


@pytest.mark.parametrize("lines, words", [
    ([b"x" * MAX_REPLY_LINE], f"over {MAX_REPLY_LINE:,} bytes"),
    ([b"PIPELINING"] * (MAX_REPLY_LINES + 1), f"over {MAX_REPLY_LINES} lines"),
    ([b"y" * 4000] * (MAX_REPLY_BYTES // 4000 + 1), f"{MAX_REPLY_BYTES // 1024} KiB"),
], ids=["long line", "many lines", "many bytes"])
async def test_a_reply_over_a_bound_closes_the_connection(lines, words):
    with pytest.raises(ReplyTooLarge) as caught:
        await open_against(ehlo_reply(*lines))
    assert words in str(caught.value) and "EHLO" in str(caught.value)
    assert caught.value.connection_lost and caught.value.temporary  # the server is broken: an outage


async def test_a_long_refusal_is_cut_short_in_the_error():
    """What the server says goes into the heartbeat note, the log and last_error: a bounded part of it."""
    async def script(stream: trio.SocketStream) -> None:
        await stream.send_all(b"".join(b"554-" + b"z" * 600 + b"\r\n" for _ in range(50)) + b"554 go away\r\n")
        await trio.sleep_forever()

    with pytest.raises(SMTPError) as caught:
        await open_against(script)
    assert caught.value.code == 554 and not caught.value.temporary
    assert len(str(caught.value)) < MAX_ERROR_TEXT + 50 and str(caught.value).startswith("greeting: 554 zzz")


async def test_a_trickling_server_gets_one_deadline_per_command():
    """A byte every 50 ms never ends a line's wait, but the command's deadline ends it all."""
    async def script(stream: trio.SocketStream) -> None:
        await stream.send_all(b"220 slow\r\n")
        await stream.receive_some(1000)
        for _ in range(10_000):
            await stream.send_all(b"2")
            await trio.sleep(0.05)

    start = trio.current_time()
    with pytest.raises(SMTPError, match=r"timeout: no complete reply to EHLO within 1 s"):
        await open_against(script, timeout=1.0)
    # A deadline per byte would wait out the whole trickle (10,000 bytes: 500 s).
    assert 0.9 < trio.current_time() - start < 5.0


async def test_an_address_with_a_line_break_never_becomes_a_command():
    seen: list[bytes] = []

    async def script(stream: trio.SocketStream) -> None:
        await stream.send_all(b"220 ok\r\n")
        while data := await stream.receive_some(65536):
            seen.append(data)
            if data.startswith(b"EHLO"):
                await stream.send_all(b"250-ok\r\n250 PIPELINING\r\n")

    async def gate():  # type: ignore[no-untyped-def]
        return lambda: None

    async with trio.open_nursery() as nursery:
        port = await start_server(nursery, script)
        conn = await SMTPConnection.open(settings(port))
        try:
            await conn.send("news@shop.example", "a@example.net>\r\nRCPT TO:<b@example.net", b"Subject: x\r\n\r\nx\r\n", gate)
        except SMTPError as exc:
            error: SMTPError | None = exc
        else:
            error = None
        await trio.sleep(0.1)
        await conn.abort()
        nursery.cancel_scope.cancel()
    assert error is not None and not error.temporary and "SMTPUTF8" in str(error)
    assert b"RCPT" not in b"".join(seen)
