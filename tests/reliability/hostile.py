"""SMTP servers that break the protocol on purpose, each in its own way, on real sockets.

They run on plain threads (one per connection) so that a test can drive a
`mailconsole serve` process against them from synchronous code. Each one
remembers what it did: connections, bytes sent, when each connection was
opened and when the client closed it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


# A refusal whose text would act on the terminal showing the log, if written as is.
TRICKS = ("554 \x1b]0;owned\x07\x1b[2J\rFAKE 2026-01-01 all fine \u202etxt.exe\x9b\r\n").encode()


@dataclass
class Connection:
    opened: float
    closed: float | None = None  # when the client hung up (or the server gave up)


@dataclass
class HostileServer:
    """Accepts connections and hands each to `behaviour(sock)`; records what happened."""

    behaviour: str  # endless_ehlo | trickle | long_line | silent_dot | terminal_tricks
    port: int = 0
    bytes_sent: int = 0
    dots: int = 0  # message bodies read up to their final dot (never answered by silent_dot)
    connections: list[Connection] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _listener: socket.socket | None = None

    def start(self) -> HostileServer:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn = Connection(time.monotonic())
            with self._lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(sock, conn), daemon=True).start()

    def _serve(self, sock: socket.socket, conn: Connection) -> None:
        try:
            getattr(self, f"_{self.behaviour}")(sock)
        except OSError:
            pass  # the client hung up: what we are waiting for
        finally:
            conn.closed = time.monotonic()
            sock.close()

    def _send(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _until_closed(self, sock: socket.socket) -> None:
        """Read (and ignore) until the client closes the connection."""
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not sock.recv(65536):
                    return
            except TimeoutError:
                continue

    @staticmethod
    def _line(sock: socket.socket, buf: bytearray) -> bytes:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("client closed")
            buf += chunk
        i = buf.index(b"\r\n")
        line = bytes(buf[:i])
        del buf[: i + 2]
        return line

    # -- behaviours ----------------------------------------------------------

    def _endless_ehlo(self, sock: socket.socket) -> None:
        """Greets, then answers EHLO with `250-` lines that never end, as fast as it can."""
        self._send(sock, b"220 endless ESMTP\r\n")
        self._line(sock, bytearray())
        chunk = b"250-AN-EXTENSION-THAT-NEVER-ENDS\r\n" * 2000
        while not self._stop.is_set():
            self._send(sock, chunk)

    def _trickle(self, sock: socket.socket) -> None:
        """Greets, then answers EHLO one byte a second with a reply that never ends."""
        self._send(sock, b"220 slow ESMTP\r\n")
        self._line(sock, bytearray())
        sock.settimeout(1.0)
        for byte in b"250-" * 10_000:
            if self._stop.is_set():
                return
            self._send(sock, bytes([byte]))
            try:
                if sock.recv(65536) == b"":
                    return  # the client gave up on us
            except TimeoutError:
                pass

    def _long_line(self, sock: socket.socket) -> None:
        """Greets with one line of 10 MB (no line end), then waits."""
        self._send(sock, b"220-" + b"x" * (10 * 1024 * 1024))
        self._until_closed(sock)

    def _terminal_tricks(self, sock: socket.socket) -> None:
        """Refuses with a reply full of terminal controls: retitle, clear, a fake line, a right-to-left override."""
        self._send(sock, TRICKS)

    def _silent_dot(self, sock: socket.socket) -> None:
        """A correct server until the end-of-data dot, which it never answers."""
        buf = bytearray()
        self._send(sock, b"220 silent ESMTP\r\n")
        while True:
            verb = self._line(sock, buf)[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self._send(sock, b"250-silent\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                self._send(sock, b"354 go on\r\n")
                while self._line(sock, buf) != b".":
                    pass
                with self._lock:
                    self.dots += 1
                self._until_closed(sock)
                return
            elif verb == b"QUIT":
                self._send(sock, b"221 bye\r\n")
                return
            else:
                self._send(sock, b"250 ok\r\n")
