"""Engine test fixtures: a real SQLite store on a real clock, mailings, SMTP servers, a running engine."""

from __future__ import annotations

import csv
import email
import email.message
import email.policy
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from store_backend import store_location
from mailconsole.engine import Engine, EngineConfig
from mailconsole.store import Actor, Store
from mailconsole.store.importer import create_mailing
from mailconsole.store.mailings import Mailing, get_mailing

OPERATOR = Actor("operator", "192.0.2.1")
SENDER = "news@shop.example"

# Fast enough for tests: short polls, quick retries, short shutdown.
FAST = dict(
    idle_claim_interval=0.02, heartbeat_interval=0.2, maintenance_interval=0.2, retry_base=0.05,
    retry_max=0.2, shutdown_grace=2.0, connect_timeout=5.0, command_timeout=5.0, data_timeout=10.0,
)


def fast_config(**changes: object) -> EngineConfig:
    return EngineConfig(**{**FAST, **changes})  # type: ignore[arg-type]


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """Engine tests run on the real clock: leases, retries and due times are real."""
    s = Store(store_location(request, tmp_path))
    yield s
    s.close()


def add_mailing(
    store: Store,
    tmp_path: Path,
    n: int = 3,
    *,
    subject: str = "Hello {{ name }}",
    text: str = "Dear {{ name }},\nyour code is {{ code }}.\n",
    html: str | None = None,
    rows: list[dict[str, str]] | None = None,
    at: float | None = None,
    list_unsubscribe: str | None = None,
    name: str = "test mailing",
    sender: str = SENDER,
    **options: object,
) -> int:
    rows = rows or [{"email": f"user{i}@example.net", "name": f"User {i}", "code": f"C{i}"} for i in range(n)]
    path = tmp_path / f"recipients-{time.monotonic_ns()}.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    result = create_mailing(
        store, OPERATOR, name=name, sender=sender, subject=subject, text_body=text, html_body=html,
        recipients=path, at=at, list_unsubscribe=list_unsubscribe, **options,
    )
    return result.mailing_id


async def mailing(store: Store, mailing_id: int) -> Mailing:
    return await trio.to_thread.run_sync(get_mailing, store, mailing_id)


async def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll a (blocking) predicate in a thread until it is true."""
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(predicate):
            await trio.sleep(0.02)


async def wait_done(store: Store, mailing_id: int, timeout: float = 20.0) -> Mailing:
    """Until nothing of the mailing is queued or claimed (everything sent or failed)."""
    def done() -> bool:
        m = get_mailing(store, mailing_id)
        return m.queued == 0 and m.in_flight == 0

    await wait_for(done, timeout)
    return await mailing(store, mailing_id)


@asynccontextmanager
async def running(store: Store, config: EngineConfig, **kwargs: object) -> AsyncIterator[Engine]:
    """An engine running in the test's trio run; stopped gracefully on exit."""
    engine = Engine(store, config, **kwargs)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        try:
            yield engine
        finally:
            engine.request_stop()


# -- an aiosmtpd server on loopback ---------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float


@dataclass
class RecordingHandler:
    """Records accepted messages; behaviour hooks make a server fail on purpose."""

    messages: list[Received] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)  # popped per DATA: e.g. "451 later"
    reject_rcpt: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.reject_rcpt:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content, time.time()))
        return "250 2.0.0 queued"

    def by_rcpt(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        for m in self.messages:
            for r in m.rcpt_tos:
                out.setdefault(r, []).append(m)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtpd_factory():
    """Start aiosmtpd servers (in their own thread, as aiosmtpd runs asyncio); all stopped at the end."""
    started: list[Controller] = []

    def start(handler: RecordingHandler | None = None, *, port: int | None = None,
              **kwargs: object) -> tuple[Controller, RecordingHandler]:
        handler = handler or RecordingHandler()
        port = port or free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return controller, handler

    yield start
    for c in started:
        c.stop()


def accept_login(user: str, password: str):  # type: ignore[no-untyped-def]
    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
        # handled=False: aiosmtpd then answers a refusal with 535 itself (with the
        # default, it assumes the authenticator replied, and the client hears nothing).
        return AuthResult(success=ok, handled=False)

    return authenticator


def parse(data: bytes) -> email.message.EmailMessage:
    """A message as a receiving mail store sees it (line ends normalised)."""
    return email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)  # type: ignore[return-value]


def message_rows(store: Store, mailing_id: int) -> dict[str, tuple]:
    """email -> (state, attempts, last_error, recovered) straight from the queue table."""
    from sqlalchemy import select

    from mailconsole.store.schema import messages

    with store.read() as conn:
        rows = conn.execute(
            select(messages.c.email, messages.c.state, messages.c.attempts, messages.c.last_error, messages.c.recovered)
            .where(messages.c.mailing_id == mailing_id)
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


class RawSMTPServer:
    """A minimal SMTP server on trio that the test steers byte by byte.

    It can cut a connection in the middle of DATA, or stop reading a body until
    the test releases it: with a body larger than the socket buffers, the
    client's write blocks, and the test knows the body is on the wire.
    """

    def __init__(self) -> None:
        self.port = 0
        self.accepted: list[tuple[str, bytes, float]] = []
        self.cut_during_data = 0  # this many DATA phases end with the server closing
        self.stall = False  # stop reading each body after its first chunk until released
        self.body_started = trio.Event()
        self.release = trio.Event()
        self.aborted = 0  # DATA phases that ended without the dot (connection closed)
        self.reject_rcpt: set[str] = set()
        self.hang_up_after_dot = 0  # this many accepted messages get no reply: the connection closes
        self.commands: list[bytes] = []

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        # A small receive buffer (inherited by accepted sockets) so a stalled
        # body backs up into the client quickly.
        listeners[0].socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        buf = bytearray()

        async def line() -> bytes | None:
            while b"\r\n" not in buf:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return None
                buf.extend(chunk)
            i = buf.index(b"\r\n")
            out = bytes(buf[:i])
            del buf[: i + 2]
            return out

        try:
            await stream.send_all(b"220 raw ESMTP\r\n")
            rcpt = ""
            while (cmd := await line()) is not None:
                self.commands.append(cmd)
                verb = cmd[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    await stream.send_all(b"250-raw\r\n250 PIPELINING\r\n")
                elif verb == b"RCPT":
                    rcpt = cmd.decode().split("<", 1)[1].rstrip(">")
                    if rcpt in self.reject_rcpt:
                        rcpt = ""
                        await stream.send_all(b"550 5.1.1 unknown user\r\n")
                    else:
                        await stream.send_all(b"250 ok\r\n")
                elif verb == b"DATA" and not rcpt:
                    await stream.send_all(b"554 5.5.1 no valid recipients\r\n")
                elif verb == b"DATA":
                    await stream.send_all(b"354 go on\r\n")
                    body = await self._body(stream, buf, line)
                    if body is None:
                        self.aborted += 1
                        return
                    self.accepted.append((rcpt, body, time.time()))
                    rcpt = ""
                    if self.hang_up_after_dot:
                        self.hang_up_after_dot -= 1
                        return
                    await stream.send_all(b"250 accepted\r\n")
                elif verb == b"QUIT":
                    await stream.send_all(b"221 bye\r\n")
                    return
                else:  # MAIL, RSET, NOOP
                    rcpt = ""
                    await stream.send_all(b"250 ok\r\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.aborted += 1
        finally:
            await stream.aclose()

    async def _body(self, stream, buf, line) -> bytes | None:  # type: ignore[no-untyped-def]
        if self.cut_during_data:
            self.cut_during_data -= 1
            await stream.receive_some(100)
            return None
        if self.stall:
            if not buf:
                buf.extend(await stream.receive_some(65536))
            self.body_started.set()
            await self.release.wait()
        data = bytearray(b"\r\n")  # the body's first line follows the DATA reply's line end
        data += buf
        buf.clear()
        while (end := data.find(b"\r\n.\r\n")) < 0:
            chunk = await stream.receive_some(1 << 20)
            if not chunk:
                return None  # closed before the dot: the transaction is cancelled
            data += chunk
        buf.extend(data[end + 5:])
        return bytes(data[2 : end + 2]).replace(b"\r\n..", b"\r\n.")


# The installed command, as an operator runs it.
MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))


def serve(db: Path | str, port: int, config: Path, *extra: str, **popen: object) -> subprocess.Popen:
    """`mailconsole serve` as its own process, sending to 127.0.0.1:port (output piped unless redirected)."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen(
        [MAILCONSOLE, "--db", str(db), "serve", "--quiet",
         "--transport", f"smtp://127.0.0.1:{port}", "--config", str(config), *extra],
        **popen,  # type: ignore[call-overload]
    )


def wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a predicate (blocking, for tests that drive processes) until true."""
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)
