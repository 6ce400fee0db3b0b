"""An aiosmtpd server on loopback that keeps the subject of every message it accepted."""

from __future__ import annotations

import email
import email.message
import email.policy
import socket
import threading
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller


class Recorder:
    """Keeps the subject of every message the server accepted (at its final-dot reply)."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        # (envelope recipients, the parsed message), in the order accepted.
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.subjects.append(str(msg["Subject"]))
            self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 2.0.0 queued"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.subjects)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, recorder
    controller.stop()
