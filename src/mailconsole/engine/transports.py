"""Where messages go, chosen by URL: smtp://, smtps://, maildir:PATH, null:.

Every transport honours the final-dot gate: `send` writes what it can, asks the
gate, and only then makes the message final (the SMTP dot, the Maildir rename
into new/, or - for null: - just counting it). A refused gate raises GateClosed.
"""

from __future__ import annotations

import mailbox
import math
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import trio

from .config import ConfigError, EngineConfig, mask_transport
from .message import Built
from .smtp import GateCheck, GateClosed, SMTPConnection, SMTPSettings

STARTTLS_MODES = ("required", "opportunistic", "off")


# The next message's (key, envelope sender, recipient), announced behind a dot.
Envelope = tuple[int, str, str]


class Session(Protocol):
    """One sender task's connection (reused across messages)."""

    async def send(self, message: Built, gate: GateCheck, *, key: int = 0, then: Envelope | None = None,
                   watched: bool = False) -> str: ...
    async def close(self) -> None: ...  # politely (QUIT), within about a second
    async def abort(self) -> None: ...  # at once, without another byte
    async def drop_announced(self) -> None: ...  # the announced message will not follow
    @property
    def closed(self) -> bool: ...
    @property
    def announced(self) -> int | None: ...  # key of the message whose envelope is already sent
    # `send(watched=True)`: the caller cancels the send once `deadline` (trio clock) has
    # passed, instead of the session enforcing its timeouts itself.
    @property
    def deadline(self) -> float: ...


class Transport(Protocol):
    name: str  # for display: password masked

    async def open(self) -> Session: ...


async def _pass_gate(gate: GateCheck) -> None:
    passed = await gate()
    if passed is None:
        raise GateClosed()
    passed()


class _LocalSession:
    """Base of the sessions without a network: nothing to announce or drop."""

    closed = False
    announced = None
    deadline = math.inf  # nothing here waits for a server

    async def close(self) -> None:
        self.closed = True

    async def abort(self) -> None:
        self.closed = True

    async def drop_announced(self) -> None:
        pass


class _NullSession(_LocalSession):
    async def send(self, message: Built, gate: GateCheck, *, key: int = 0, then: Envelope | None = None,
                   watched: bool = False) -> str:
        await _pass_gate(gate)
        return "250 discarded"


@dataclass
class NullTransport:
    """Discards messages after the gate: for benchmarks and dry runs."""

    name: str = "null:"
    # Its "dot" is instantaneous and cannot fail, so the engine may let one gate
    # answer cover a batch of messages (Gate.passage_many) instead of using send().
    instant_dots = True

    async def open(self) -> Session:
        return _NullSession()


class _MaildirSession(_LocalSession):
    def __init__(self, box: mailbox.Maildir, lock: threading.Lock) -> None:
        self._box = box
        self._lock = lock

    async def send(self, message: Built, gate: GateCheck, *, key: int = 0, then: Envelope | None = None,
                   watched: bool = False) -> str:
        data = message.data.replace(b"\r\n", b"\n")
        passed = await gate()  # before the file appears in new/: the Maildir "dot"
        if passed is None:
            raise GateClosed()
        try:
            name = await trio.to_thread.run_sync(self._add, data)
        finally:
            passed()
        return f"250 stored as {name}"

    def _add(self, data: bytes) -> str:
        # Maildir's unique names use a per-object counter that is not thread-safe.
        with self._lock:
            return self._box.add(data)


@dataclass
class MaildirTransport:
    """Real Maildir files via the standard library: dry runs and the demo."""

    path: Path
    name: str = ""

    def __post_init__(self) -> None:
        self.name = f"maildir:{self.path}"
        self._box = mailbox.Maildir(self.path, create=True)
        self._lock = threading.Lock()

    async def open(self) -> Session:
        return _MaildirSession(self._box, self._lock)


class _SMTPSession:
    def __init__(self, conn: SMTPConnection) -> None:
        self._conn = conn

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def announced(self) -> int | None:
        return self._conn.announced[0] if self._conn.announced else None

    @property
    def deadline(self) -> float:
        return self._conn.deadline

    async def send(self, message: Built, gate: GateCheck, *, key: int = 0, then: Envelope | None = None,
                   watched: bool = False) -> str:
        reply = await self._conn.send(message.envelope_from, message.recipient, message.data, gate, key=key, then=then,
                                     watched=watched)
        return str(reply)

    async def drop_announced(self) -> None:
        if self._conn.announced:
            await self._conn.abort()  # the server waits for a body: only closing ends that

    async def close(self) -> None:
        await self._conn.quit()

    async def abort(self) -> None:
        await self._conn.abort()


@dataclass
class SMTPTransport:
    settings: SMTPSettings
    name: str

    @property
    def relay(self) -> str:
        """host:port, recorded with each message handed over (the relay agent's key)."""
        return f"{self.settings.host}:{self.settings.port}"

    async def open(self) -> Session:
        return _SMTPSession(await SMTPConnection.open(self.settings))


def _smtp_settings(url: str, config: EngineConfig, ssl_context: ssl.SSLContext | None) -> SMTPSettings:
    parts = urlsplit(url)
    implicit = parts.scheme == "smtps"
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls", "cafile", "verify"}
    if unknown:
        raise ConfigError(f"transport {mask_transport(url)}: unknown option(s) {', '.join(sorted(unknown))}")
    mode = query.get("starttls", "opportunistic")
    if mode not in STARTTLS_MODES:
        raise ConfigError(f"transport {mask_transport(url)}: starttls must be one of {', '.join(STARTTLS_MODES)}")
    if not parts.hostname:
        raise ConfigError(f"transport {mask_transport(url)} names no host (expected smtp://host:port)")
    try:
        port = parts.port or (465 if implicit else 25)
    except ValueError:
        raise ConfigError(f"transport {mask_transport(url)} has an invalid port") from None
    if ssl_context is None:
        ssl_context = ssl.create_default_context(cafile=query.get("cafile"))
        if query.get("verify") == "off":  # a local relay with a self-signed certificate
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
    return SMTPSettings(
        host=parts.hostname,
        port=port,
        implicit_tls=implicit,
        starttls=mode,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else config.password,
        helo_name=config.helo_name or socket.getfqdn() or "localhost",
        ssl_context=ssl_context,
        connect_timeout=config.connect_timeout,
        command_timeout=config.command_timeout,
        data_timeout=config.data_timeout,
    )


def make_transport(config: EngineConfig, *, ssl_context: ssl.SSLContext | None = None) -> Transport:
    """The transport the configuration's URL names (ssl_context: for tests and private CAs)."""
    url = config.transport.strip()
    if url in ("null:", "null://", "null"):
        return NullTransport()
    if url.startswith("maildir:"):
        path = url[len("maildir:"):]
        path = path[2:] if path.startswith("//") else path
        if not path:
            raise ConfigError("transport maildir: needs a directory, e.g. maildir:/var/mail/dry-run")
        return MaildirTransport(Path(path).expanduser())
    if url.startswith(("smtp://", "smtps://")):
        return SMTPTransport(_smtp_settings(url, config, ssl_context), mask_transport(url))
    raise ConfigError(f"unknown transport {mask_transport(url)!r}: use smtp://host:port, smtps://host:port, maildir:PATH or null:")
