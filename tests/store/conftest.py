"""Store-test fixtures: build mailings quickly through the real importer."""

from __future__ import annotations

import pytest
from storehelp import ALICE, SENDER, recipients

from mailconsole.store.importer import create_mailing


@pytest.fixture
def make_mailing(store, csv_file):
    """Create a mailing of n recipients through the real importer; returns its id."""

    def make(n: int = 10, *, name: str = "Autumn sale", at: float | None = None,
             subject: str = "Hello {{ name }}", body: str = "Dear {{ name }},\nour news.\n") -> int:
        path = csv_file(recipients(n))
        return create_mailing(
            store, ALICE, name=name, sender=SENDER, subject=subject,
            text_body=body, html_body=None, recipients=path, at=at,
        ).mailing_id

    return make


