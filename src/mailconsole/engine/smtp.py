"""A small SMTP client on trio streams, built around the final-dot gate.

Why our own client: the final-dot gate needs a hook between "the body is
written" and "the end-of-data dot is written", and closing the connection there
is the only way to abort (RFC 5321 4.1.1.10: after the 354 reply an RSET would
be read as message text). No SMTP library for trio offers that hook (smtplib is
blocking, aiosmtplib is asyncio-only and sends body and dot in one call), so
this module speaks the protocol itself: EHLO, STARTTLS, implicit TLS, AUTH
PLAIN/LOGIN, PIPELINING of MAIL/RCPT/DATA, dot-stuffing and timeouts, on one
reused connection per sender task.

A server is not trusted to be well-behaved: replies are bounded in size (see
MAX_REPLY_*), each command has one deadline for the whole of it, and no address
with a line break or non-ASCII character is ever written into an envelope.
"""

from __future__ import annotations

import base64
import math
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import trio

# The gate: called after the body is written. Returns None to abort (the
# connection is then closed before the dot) or a callback to call once the dot
# has been written.
GateCheck = Callable[[], Awaitable[Callable[[], None] | None]]


# What a server may send us, at most. RFC 5321 4.5.3.1.5 allows 512 octets per
# reply line; these bounds are lenient, yet a server that answers without end (or
# with one endless line) costs a few KiB before it is cut off, not all memory, and
# the reading loop below never runs long without giving other tasks their turn.
MAX_REPLY_LINE = 4096  # bytes per reply line, without its CRLF
MAX_REPLY_LINES = 100  # lines per (multiline) reply
MAX_REPLY_BYTES = 64 * 1024  # bytes per reply, all lines together

# Bodies up to this size (with the dot) leave in one write after the gate: half
# the smallest send buffer Linux gives a TCP socket, so that write never waits.
SEND_WITH_DOT = 8192

_TCP_CORK = getattr(socket, "TCP_CORK", None)  # Linux
_MSG_MORE = getattr(socket, "MSG_MORE", None)  # Linux: hold this data until the next write


def _raw_socket(stream: trio.abc.Stream) -> socket.socket | None:
    """The non-blocking OS socket under a plain TCP stream, for the fast paths below.

    trio's send and receive each end in a scheduling round even when the kernel
    takes or has the data at once; per message that is several rounds, a large
    share of the engine's CPU. Writing and reading directly when that succeeds,
    and falling back to the stream when it would block, keeps the same bytes in
    the same order. (trio keeps the OS socket in `_sock`; without it: no fast path.)
    """
    if not isinstance(stream, trio.SocketStream):
        return None
    raw = getattr(stream.socket, "_sock", None)
    return raw if isinstance(raw, socket.socket) else None


class SMTPError(Exception):
    """A failed command or transaction. `temporary` decides retry versus failure."""

    def __init__(self, message: str, *, code: int = 0, temporary: bool = True, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.temporary = temporary
        self.connection_lost = connection_lost


class ReplyTooLarge(SMTPError):
    """The server sent more than a reply may hold: treated as a broken server."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}; connection closed", connection_lost=True)


class GateClosed(Exception):
    """The gate refused the message; the connection was dropped before the dot."""


class Reply(NamedTuple):  # a tuple: four are made per message, a frozen dataclass costs twice as much
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines).strip()

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass
class SMTPSettings:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: str = "opportunistic"  # required | opportunistic | off
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    helo_name: str = "localhost"
    ssl_context: ssl.SSLContext | None = None
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    data_timeout: float = 120.0


# Of a refusal's text, this much goes into the error (stored, logged, in the heartbeat note).
MAX_ERROR_TEXT = 500


def _error_from(reply: Reply, what: str) -> SMTPError:
    text = str(reply)
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + " […]"
    return SMTPError(f"{what}: {text}", code=reply.code, temporary=reply.code < 500)


def _envelope(sender: str, recipient: str) -> bytes:
    return f"MAIL FROM:<{_path(sender)}>\r\nRCPT TO:<{_path(recipient)}>\r\nDATA\r\n".encode("ascii")


def _path(address: str) -> str:
    """An address as it may appear in MAIL/RCPT: the engine checks addresses before
    building a message; this is the last line against a line break becoming a command."""
    if not address.isascii() or not address.isprintable() or any(c in address for c in " <>"):
        raise SMTPError(f"address {address!r} cannot be sent without SMTPUTF8", temporary=False)
    return address


def dot_stuff(data: bytes) -> bytes:
    """Double every dot that starts a line (RFC 5321 4.5.2)."""
    data = data.replace(b"\n.", b"\n..")
    return b"." + data if data.startswith(b".") else data


class SMTPConnection:
    """One open, greeted (and, if configured, encrypted and authenticated) SMTP session."""

    def __init__(self, stream: trio.abc.Stream, settings: SMTPSettings) -> None:
        self._stream = stream
        self._tcp = stream if isinstance(stream, trio.SocketStream) else None
        self._raw = _raw_socket(stream)
        self._settings = settings
        self._buffer = bytearray()
        self.extensions: dict[str, str] = {}
        self.closed = False
        self._dirty = False  # a transaction was left half-open: RSET before the next
        # (key, sender, recipient) whose MAIL/RCPT/DATA went out behind the last dot;
        # their three replies are still to be read by the next send().
        self.announced: tuple[int, str, str] | None = None
        self.deadline = math.inf  # of the transaction under way (see send)
        self._scope: trio.CancelScope | None = None

    # -- opening -------------------------------------------------------------

    @classmethod
    async def open(cls, settings: SMTPSettings) -> SMTPConnection:
        try:
            with trio.fail_after(settings.connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(settings.host, settings.port)
        except (OSError, trio.TooSlowError) as exc:
            raise SMTPError(f"cannot connect to {settings.host}:{settings.port}: {exc or 'timeout'}", connection_lost=True) from None
        conn = cls(stream, settings)
        try:
            if settings.implicit_tls:
                await conn._start_tls()
            await conn._exchange(None, 220, "greeting", settings.connect_timeout)
            await conn._ehlo()
            if not settings.implicit_tls and settings.starttls != "off":
                if "STARTTLS" in conn.extensions:
                    await conn._command(b"STARTTLS", 220, "STARTTLS")
                    await conn._start_tls()
                    await conn._ehlo()
                elif settings.starttls == "required":
                    raise SMTPError(f"{settings.host} does not offer STARTTLS, and it is required", temporary=True)
            if settings.username:
                await conn._auth()
        except BaseException:
            await conn.abort()
            raise
        return conn

    async def _start_tls(self) -> None:
        context = self._settings.ssl_context or ssl.create_default_context()
        tls = trio.SSLStream(self._stream, context, server_hostname=self._settings.host)
        try:
            with trio.fail_after(self._settings.connect_timeout):
                await tls.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            cause = exc.__cause__ or exc
            raise SMTPError(f"TLS with {self._settings.host} failed: {cause}", connection_lost=True) from None
        self._tcp = self._raw = None  # corking under TLS records would gain little
        self._stream = tls
        self._buffer.clear()

    async def _ehlo(self) -> None:
        reply = await self._command(f"EHLO {self._settings.helo_name}".encode(), 250, "EHLO")
        self.extensions = {}
        for line in reply.lines[1:]:
            keyword, _, params = line.partition(" ")
            self.extensions[keyword.upper()] = params

    async def _auth(self) -> None:
        user = self._settings.username or ""
        password = self._settings.password or ""
        methods = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in methods:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            await self._command(f"AUTH PLAIN {token}".encode(), 235, "AUTH PLAIN", secret=True)
        elif "LOGIN" in methods:
            await self._command(b"AUTH LOGIN", 334, "AUTH LOGIN")
            await self._command(base64.b64encode(user.encode()), 334, "AUTH LOGIN user", secret=True)
            await self._command(base64.b64encode(password.encode()), 235, "AUTH LOGIN password", secret=True)
        else:
            raise SMTPError(f"{self._settings.host} offers no AUTH PLAIN or LOGIN (offered: {methods or 'none'})", temporary=True)

    # -- sending -------------------------------------------------------------

    async def send(
        self, sender: str, recipient: str, data: bytes, gate: GateCheck,
        *, key: int = 0, then: tuple[int, str, str] | None = None, watched: bool = False,
    ) -> Reply:
        """One transaction. Raises SMTPError, or GateClosed after dropping the connection.

        `then` (key, sender, recipient) announces the next message: with PIPELINING
        its envelope is written right behind this message's dot, and the next
        send() with that key only reads the replies.

        The transaction's deadline, moved per phase, is `self.deadline`. Unless
        `watched`, one cancel scope of its own enforces it (a scope per read and
        write costs more than the rest of the protocol). `watched`: the caller
        enforces it instead, by cancelling a scope it holds around this call once
        `deadline` has passed (runner.py: one watchdog for every connection, since
        a cancel scope with a deadline per transaction costs ~10 us); the
        connection is then dropped as for any cancellation.
        """
        try:
            if watched:
                self._phase(self._settings.command_timeout)
                return await self._guarded(sender, recipient, data, gate, key, then)
            with trio.CancelScope() as scope:
                self._scope = scope
                self._phase(self._settings.command_timeout)
                return await self._guarded(sender, recipient, data, gate, key, then)
        finally:
            self._scope = None
            self.deadline = math.inf
        await self.abort()
        raise SMTPError("timeout: the server did not answer in time", connection_lost=True)

    def _phase(self, timeout: float) -> None:
        """The deadline of the transaction's next phase."""
        self.deadline = trio.current_time() + timeout
        if self._scope is not None:
            self._scope.deadline = self.deadline

    async def _guarded(
        self, sender: str, recipient: str, data: bytes, gate: GateCheck, key: int, then: tuple[int, str, str] | None,
    ) -> Reply:
        try:
            return await self._transaction(sender, recipient, data, gate, key, then)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await self.abort()
            raise SMTPError(f"connection lost: {exc}", connection_lost=True) from None
        except SMTPError as exc:
            if exc.connection_lost:  # the session is gone: the next message must reconnect
                await self.abort()
            raise  # a refused command leaves the session usable
        except GateClosed:
            raise
        except BaseException:  # cancelled mid-transaction: never leave a DATA phase open
            await self.abort()
            raise

    async def _transaction(
        self, sender: str, recipient: str, data: bytes, gate: GateCheck,
        key: int, then: tuple[int, str, str] | None,
    ) -> Reply:
        announced, self.announced = self.announced, None
        if announced is not None and announced != (key, sender, recipient):
            await self.abort()
            raise SMTPError("internal: a different message was announced on this connection", connection_lost=True)
        if self._dirty and announced is None:
            await self._command(b"RSET", 250, "RSET")
            self._dirty = False
        self._dirty = True
        if announced is not None or "PIPELINING" in self.extensions:
            if announced is None:
                await self._send(_envelope(sender, recipient))
            replies = [await self._reply(what) for what in ("MAIL FROM", "RCPT TO", "DATA")]
            for reply, expected, what in zip(replies, (250, 250, 354), ("MAIL FROM", f"RCPT TO <{recipient}>", "DATA")):
                if reply.code // 100 != expected // 100 or (expected == 354 and reply.code != 354):
                    if replies[2].code == 354:
                        # The server wants a body after refusing the envelope; only
                        # closing the connection ends that transaction safely.
                        await self.abort()
                    raise _error_from(reply, what)
        else:
            await self._command(f"MAIL FROM:<{_path(sender)}>".encode(), 250, "MAIL FROM")
            await self._command(f"RCPT TO:<{_path(recipient)}>".encode(), 250, f"RCPT TO <{recipient}>")
            await self._command(b"DATA", 354, "DATA")
        self._phase(self._settings.data_timeout)
        # Held back (MSG_MORE, or corked), the body waits in our socket buffer and
        # leaves together with the dot: one transmission instead of two, the largest
        # cost on a fast network. A body held back or already sent makes no
        # difference to the gate: without the dot the server discards it when the
        # connection closes.
        follow = b""
        if then is not None and "PIPELINING" in self.extensions:
            try:  # prepared before the gate: nothing may fail between its answer and the dot
                follow = _envelope(then[1], then[2])
            except SMTPError:
                then = None  # that message will get its own error when its turn comes
        body = dot_stuff(data)
        dot = b".\r\n" + follow
        # A small body is held until the gate has answered and leaves in one system
        # call with the dot (one call less per message). It cannot block there: the
        # server answered DATA, so it has read all we sent before, and our socket
        # buffer (never under 16 KiB on Linux) is empty. A larger body goes out first.
        together = self._raw is not None and _MSG_MORE is not None and len(body) + len(dot) <= SEND_WITH_DOT
        if not together:
            await self._send(body, more=True)
        # The final-dot gate (DESIGN.md): nothing has been accepted yet. If the
        # stop state changed, closing now makes the server drop the transaction.
        passed = await gate()
        if passed is None:
            await self.abort()
            raise GateClosed()
        try:
            if together:
                await self._send_parts(body, dot)
            else:
                await self._send(dot)
                self._cork(False)
        finally:
            passed()
        if len(dot) > 3:
            self.announced = then
        reply = await self._reply("end of data")
        self._dirty = self.announced is not None  # the next transaction has begun
        if reply.code // 100 != 2:
            raise _error_from(reply, "end of data")
        return reply

    def _cork(self, on: bool) -> None:
        # Only where MSG_MORE is not used (see _send): a cork costs two system calls.
        if self._tcp is not None and _TCP_CORK is not None and (self._raw is None or _MSG_MORE is None):
            self._tcp.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1 if on else 0)

    async def _send(self, data: bytes, *, more: bool = False) -> None:
        """Write all of `data` within a transaction; `more`: hold it for the next write.

        On plain TCP one direct system call usually takes everything; only the
        rest, if any, goes through the stream (with its scheduling round).
        """
        raw = self._raw
        if raw is None or _MSG_MORE is None:
            if more:
                self._cork(True)
            await self._stream.send_all(data)
            return
        try:
            sent = raw.send(data, _MSG_MORE if more else 0)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            await self._stream.send_all(memoryview(data)[sent:])

    async def _send_parts(self, first: bytes, second: bytes) -> None:
        """`first` then `second`, in one system call when the kernel takes both (plain TCP only)."""
        assert self._raw is not None
        try:
            sent = self._raw.sendmsg((first, second))
        except BlockingIOError:
            sent = 0
        if sent < len(first) + len(second):
            await self._stream.send_all((first + second)[sent:])

    async def quit(self) -> None:
        """Polite close; never raises."""
        if self.closed:
            return
        with trio.move_on_after(1.0):
            try:
                await self._exchange(b"QUIT", 221, "QUIT", 1.0)
            except SMTPError:
                pass
        await self.abort()

    async def abort(self) -> None:
        """Drop the connection without another byte (cancels an open DATA phase)."""
        self.announced = None
        if not self.closed:
            self.closed = True
            await trio.aclose_forcefully(self._stream)

    # -- wire ----------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        """Write outside a transaction; the caller's deadline bounds it."""
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await self.abort()
            raise SMTPError(f"connection lost: {exc}", connection_lost=True) from None

    async def _command(self, line: bytes, expected: int, what: str, *, secret: bool = False) -> Reply:
        # `secret` commands are never echoed in errors: only `what` names them.
        return await self._exchange(line, expected, what, self._settings.command_timeout)

    async def _exchange(self, line: bytes | None, expected: int, what: str, timeout: float) -> Reply:
        """Send `line` (if any) and read its reply, all within one deadline.

        One deadline for the whole command, not one per read: a server that
        trickles a byte at a time never keeps a command open past `timeout`.
        """
        with trio.move_on_after(timeout) as scope:
            try:
                if line is not None:
                    await self._write(line + b"\r\n")
                reply = await self._reply(what)
            except SMTPError as exc:
                if exc.connection_lost:
                    await self.abort()
                raise
        if scope.cancelled_caught:
            await self.abort()
            raise SMTPError(f"timeout: no complete reply to {what} within {timeout:g} s", connection_lost=True)
        if reply.code != expected and not (expected == 250 and reply.code // 100 == 2):
            raise _error_from(reply, what)
        return reply

    async def _read_line(self, what: str) -> bytes:
        while True:
            # Looked for only as far as a line may reach: an endless line is refused
            # once it is longer than that, without buffering more of it.
            end = self._buffer.find(b"\n", 0, MAX_REPLY_LINE + 2)
            if end >= 0:
                line = bytes(self._buffer[:end]).rstrip(b"\r")
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > MAX_REPLY_LINE + 1:
                raise ReplyTooLarge(
                    f"a line of the server's reply to {what} is over {MAX_REPLY_LINE:,} bytes (RFC 5321 allows 512)"
                )
            try:
                chunk = self._receive_now()
                if chunk is None:
                    if self._raw is not None:
                        # Wait on the OS socket itself: the stream's receive_some would
                        # first try (and fail) the same recv we just made.
                        await trio.lowlevel.wait_readable(self._raw)
                        continue
                    chunk = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise SMTPError(f"connection lost: {exc}", connection_lost=True) from None
            if not chunk:
                raise SMTPError("connection closed by the server", connection_lost=True)
            self._buffer += chunk

    def _receive_now(self) -> bytes | None:
        """What the kernel already has for us, without a scheduling round (None: nothing yet)."""
        if self._raw is None or self.closed:
            return None
        try:
            return self._raw.recv(65536)
        except BlockingIOError:
            return None

    async def _reply(self, what: str) -> Reply:
        """The next reply, without a timeout of its own (the caller's scope has one).

        Bounded in lines and bytes: past the bounds the server is broken, whatever
        it meant to say.
        """
        buf = self._buffer
        end = buf.find(b"\n", 0, MAX_REPLY_LINE + 2)
        if end > 3 and buf[3] == 32 and buf[:3].isdigit():
            # A complete one-line reply is already buffered (the usual case: the
            # replies to a dot and the next envelope arrive together): the loop
            # below would find the same, at twice the cost.
            text = bytes(buf[4:end]).rstrip(b"\r").decode("utf-8", "replace")
            code = int(buf[:3])
            del buf[: end + 1]
            return Reply(code, (text,))
        lines: list[str] = []
        size = 0
        while True:
            raw = await self._read_line(what)
            size += len(raw) + 2
            if len(lines) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                raise ReplyTooLarge(
                    f"the server's reply to {what} is over {MAX_REPLY_LINES} lines or {MAX_REPLY_BYTES // 1024} KiB"
                )
            text = raw.decode("utf-8", "replace")
            if len(text) < 3 or not text[:3].isdigit():
                raise SMTPError(f"malformed server reply to {what}: {text[:80]!r}", connection_lost=True)
            lines.append(text[4:])
            if len(text) == 3 or text[3] != "-":
                return Reply(int(text[:3]), tuple(lines))
