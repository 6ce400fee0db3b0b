"""An SMTP server on trio that misbehaves at random, and remembers exactly how.

Every fault reply carries a unique token (`F17`) and is logged with its stage and,
where the server knows it, the recipient, so a test can check each message's
final state and `last_error` against what the server really did. Faults:
4xx/5xx at the greeting, EHLO, MAIL, RCPT, DATA and end of data; slow replies
(some slower than the client's timeout); connections dropped during the body,
after the dot without a reply, and after accepting the message (the client never
hears the 250: a possible duplicate); and the whole server vanishing for a while.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import trio

# stage -> reply codes the server may answer with instead of the right one
CODES = {
    "greeting": (421, 554),
    "EHLO": (421, 451, 554),
    "MAIL": (451, 452, 550, 554),
    "RCPT": (450, 451, 452, 550, 554),
    "DATA": (451, 554),
    "dot": (451, 452, 550, 554),
}
# What the server does at the end of data instead of answering, when it misbehaves there.
DOT_DROPS = ("drop_before_dot", "drop_after_dot", "accept_then_drop")
_TOKEN = re.compile(rb"\bF\d+\b")


@dataclass(frozen=True)
class Fault:
    token: str
    stage: str
    code: int  # 0 for a dropped connection
    rcpt: str | None  # the recipient it hit, when the server knew it


@dataclass
class FaultServer:
    rnd: random.Random
    p_fault: float = 0.04  # per stage of a transaction
    p_connect_fault: float = 0.15  # greeting and EHLO: connections are reused, so these are rarer events
    p_slow: float = 0.05  # a reply delayed up to slow_max
    slow_max: float = 0.3
    p_too_slow: float = 0.005  # a reply delayed beyond the client's timeout
    too_slow: float = 4.0  # the tests' clients wait 3 s
    port: int = 0
    faults: list[Fault] = field(default_factory=list)
    accepted: list[tuple[str, bytes]] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)  # recipient -> RCPT reply it always gets
    seen: set[str] = field(default_factory=set)  # tokens of fault replies the client has surely read
    _on_line: dict[int, list[str]] = field(default_factory=dict)  # connection -> fault tokens not yet confirmed
    _scope: trio.CancelScope | None = None
    _up: trio.Event = field(default_factory=trio.Event)
    _gone: trio.Event = field(default_factory=trio.Event)

    def _fault(self, stage: str, rcpt: str | None, code: int = 0) -> Fault:
        fault = Fault(f"F{len(self.faults)}", stage, code, rcpt)
        self.faults.append(fault)
        return fault

    def _roll(self, stage: str, rcpt: str | None = None) -> bytes | None:
        """A fault reply for this stage, or None to behave."""
        p = self.p_connect_fault if stage in ("greeting", "EHLO") else self.p_fault
        if self.rnd.random() >= p:
            return None
        code = self.rnd.choice(CODES[stage])
        f = self._fault(stage, rcpt, code)
        return f"{code} {code // 100}.0.0 {f.token} fault at {stage}\r\n".encode()

    def _refusal(self, rcpt: str) -> bytes | None:
        code = self.refuse.get(rcpt)
        if code is None:
            return None
        f = self._fault("RCPT", rcpt, code)
        return f"{code} {code // 100}.1.1 {f.token} always refused\r\n".encode()

    async def _send(self, stream: trio.SocketStream, data: bytes) -> None:
        """Reply, maybe slowly. A fault reply counts as seen only once it is written in time."""
        token = _TOKEN.search(data)
        r = self.rnd.random()
        if r < self.p_too_slow:
            await trio.sleep(self.too_slow)
            await stream.send_all(data)
            # The client has hung up; reading on would roll faults nobody sees.
            raise trio.ClosedResourceError("reply too late")
        if r < self.p_slow:
            await trio.sleep(self.rnd.uniform(0, self.slow_max))
        await stream.send_all(data)
        if token is not None:
            self._on_line.setdefault(id(stream), []).append(token.group().decode())

    def _confirm(self, stream: trio.SocketStream) -> None:
        """The client acted on everything sent so far: it has read those fault replies.

        Called on RSET, QUIT and a message body, which a client sends only after
        reading the replies before them (a pipelined envelope proves nothing).
        """
        self.seen.update(self._on_line.pop(id(stream), []))

    # -- lifecycle -------------------------------------------------------------

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
        """Serve until cancelled; `vanish()` closes the listener and every connection for a while."""
        started = False
        while True:
            listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            if not started:
                task_status.started(self.port)
                started = True
            with trio.CancelScope() as self._scope:
                self._up.set()
                await trio.serve_listeners(self._handle, listeners)
            for listener in listeners:
                await listener.aclose()
            await self._gone.wait()

    async def vanish(self, seconds: float) -> None:
        """The server goes away (connections refused, open ones cut) and comes back on the same port."""
        self._gone = trio.Event()
        self._up = trio.Event()
        assert self._scope is not None
        self._scope.cancel()
        self._fault("vanish", None)
        await trio.sleep(seconds)
        self._gone.set()
        await self._up.wait()

    # -- one connection --------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        reader = _Lines(stream)
        try:
            if (bad := self._roll("greeting")) is not None:
                await self._send(stream, bad)
                return
            await self._send(stream, b"220 faulty ESMTP\r\n")
            mail = rcpt = None
            while (cmd := await reader.line()) is not None:
                verb = cmd[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    bad = self._roll("EHLO")
                    await self._send(stream, bad or b"250-faulty\r\n250 PIPELINING\r\n")
                    if bad and bad.startswith((b"421", b"554")):
                        return
                elif verb == b"MAIL":
                    bad = self._roll("MAIL")
                    mail = None if bad else cmd
                    await self._send(stream, bad or b"250 ok\r\n")
                elif verb == b"RCPT":
                    address = cmd.decode().split("<", 1)[1].rstrip(">")
                    bad = None if mail is None else self._refusal(address) or self._roll("RCPT", address)
                    rcpt = address if (mail is not None and bad is None) else None
                    await self._send(stream, bad or (b"250 ok\r\n" if mail else b"503 5.5.1 MAIL first\r\n"))
                elif verb == b"DATA":
                    if rcpt is None:
                        await self._send(stream, b"554 5.5.1 no valid recipients\r\n")
                        continue
                    if (bad := self._roll("DATA", rcpt)) is not None:
                        await self._send(stream, bad)
                        mail = rcpt = None
                        continue
                    await self._send(stream, b"354 go on\r\n")
                    if not await self._data(stream, reader, rcpt):
                        return
                    mail = rcpt = None
                elif verb == b"QUIT":
                    self._confirm(stream)
                    await stream.send_all(b"221 bye\r\n")
                    return
                else:  # RSET, NOOP
                    self._confirm(stream)
                    mail = rcpt = None
                    await self._send(stream, b"250 ok\r\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._on_line.pop(id(stream), None)
            await trio.aclose_forcefully(stream)

    async def _data(self, stream: trio.SocketStream, reader: _Lines, rcpt: str) -> bool:
        """Read a body and answer its dot (or not). False: the connection is to be closed."""
        drop = self.rnd.choice(DOT_DROPS) if self.rnd.random() < self.p_fault else None
        if drop == "drop_before_dot":
            self._fault(drop, rcpt)
            return False
        body = await reader.body()
        if body is None:
            return False  # the client closed before the dot: nothing was accepted
        self._confirm(stream)
        if drop == "drop_after_dot":
            self._fault(drop, rcpt)
            return False
        if (bad := self._roll("dot", rcpt)) is not None:
            await self._send(stream, bad)
            return True
        self.accepted.append((rcpt, body))  # responsibility taken here, as a real MTA queues it
        if drop == "accept_then_drop":
            self._fault(drop, rcpt)
            return False
        await self._send(stream, b"250 accepted\r\n")
        return True

    def by_token(self) -> dict[str, Fault]:
        return {f.token: f for f in self.faults}


class _Lines:
    """Buffered reading of command lines and of a DATA body up to its dot."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()

    async def _more(self) -> bool:
        chunk = await self._stream.receive_some(65536)
        self._buf += chunk
        return bool(chunk)

    async def line(self) -> bytes | None:
        while (i := self._buf.find(b"\r\n")) < 0:
            if not await self._more():
                return None
        out = bytes(self._buf[:i])
        del self._buf[: i + 2]
        return out

    async def body(self) -> bytes | None:
        self._buf[0:0] = b"\r\n"  # the first body line follows the DATA reply's line end
        while (end := self._buf.find(b"\r\n.\r\n")) < 0:
            if not await self._more():
                return None
        body = bytes(self._buf[2 : end + 2]).replace(b"\r\n..", b"\r\n.")
        del self._buf[: end + 5]
        return body
