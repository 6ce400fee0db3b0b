"""The delete dialog names the mailing big and whole, with its counts; Cancel is the default."""

from __future__ import annotations

import re
from pathlib import Path

from textual.widgets import Static

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.console.modals import ConfirmScreen
from mailconsole.store import Store, importer, mailings, queue, revisions

from .builder import FIXED, OPERATOR
from .pilot import drive, press, screen_text

LONG = "Spring sale 2026 — second reminder for loyalty members in Portugal, Spain and Italy (corrected list)"


def _store(tmp_path: Path) -> tuple[Store, int]:
    store = Store(store_at(tmp_path / "store.db"), clock=lambda: FIXED)
    csv = tmp_path / "r.csv"
    csv.write_text("email,first_name\n" + "".join(f"r{i}@example.org,N{i}\n" for i in range(12)))
    mid = importer.create_mailing(store, OPERATOR, name=LONG, sender="shop@example.com", subject="Hi {{ first_name }}",
                                  text_body="Hello\n", html_body=None, recipients=csv).mailing_id
    rev = revisions.newest_revision(store, mid)
    assert rev is not None
    claimed = queue.claim(store, "probe", 5, 60)
    queue.record(store, "probe", [queue.Outcome(c.id, c.mailing_id, "sent", rev.id) for c in claimed])
    return store, mid


def _words(screen: str) -> str:
    return " ".join(re.sub(r"[█▌▐▀▄┃━╸╺]", " ", screen).split())


def test_the_name_is_whole_on_its_own_lines_with_the_counts(tmp_path: Path) -> None:
    store, mid = _store(tmp_path)
    app = MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2", "d")
        assert isinstance(app.screen, ConfirmScreen)
        headline = app.screen.query_one(".dialog-headline", Static)
        assert str(headline.render()) == LONG
        assert headline.size.height >= 2  # wrapped, not cut
        text = _words(screen_text(app))
        assert LONG in text
        assert re.search(r"recipients 12 already sent 5 stay sent unsent, to drop 7 never sent", text), text
        assert app.focused is not None and app.focused.id == "no"
        await press(pilot, "enter")  # Enter by habit: Cancel
        assert not isinstance(app.screen, ConfirmScreen)

    drive(app, script, size=(80, 24))
    assert mailings.get_mailing(store, mid).status == "sending"
