"""Hostile-input fixtures: a store, mailings created through the importer, messages built directly."""

from __future__ import annotations

from csvfiles import write_csv  # noqa: F401  (re-exported for the security tests)
import email
import email.policy
from pathlib import Path

import pytest

from mailconsole.engine.message import CompiledRevision, RevisionData
from mailconsole.store import Actor, Store
from mailconsole.store.importer import create_mailing

MALLORY = Actor("mallory", "198.51.100.66")
SENDER = "news@shop.example"


@pytest.fixture
def store(tmp_path: Path):
    s = Store(str(tmp_path / "store.db"))
    yield s
    s.close()


@pytest.fixture
def create(store: Store, tmp_path: Path):
    """create_mailing with harmless defaults; any argument can be made hostile."""
    counter = iter(range(1_000_000))

    def make(rows: list[dict[str, str]] | None = None, **kwargs: object) -> int:
        path = write_csv(tmp_path / f"r{next(counter)}.csv", rows or [{"email": "a@example.net", "name": "A"}])
        args: dict[str, object] = dict(
            name="m", sender=SENDER, subject="Hi {{ name }}", text_body="Hello {{ name }}\n", html_body=None,
            recipients=path,
        )
        args.update(kwargs)
        return create_mailing(store, MALLORY, **args).mailing_id  # type: ignore[arg-type]

    return make


def build(text: str = "x", *, subject: str = "Hi", html: str | None = None, sender: str = SENDER,
          list_unsubscribe: str | None = None, fields: dict[str, str] | None = None, to: str = "a@example.net") -> bytes:
    """One message straight from the engine's builder (what would go to the SMTP server)."""
    rev = RevisionData(1, subject, text, html, sender, list_unsubscribe)
    return CompiledRevision(1, rev).build(1, to, fields or {}, now=1_800_000_000.0).data


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.SMTP)  # type: ignore[return-value]


# The headers every built message has; an injection shows up as any other.
HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]
