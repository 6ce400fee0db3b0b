"""The resume dialog: per mailing, what is sent now, suspended by the 7-day rule, and held.

It once said "20,000 will be sent" for a paused mailing that sent nothing: the
numbers here are checked exactly against a store with a sending mailing, a
paused one and one whose messages are older than 7 days.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from mailconsole.console.app import MailConsole
from mailconsole.console.resume_dialog import plan_table, resume_body
from mailconsole.store import accounts, audit, mailings

from .builder import FIXED, OPERATOR, build_resume
from .pilot import drive, press, screen_text


def _row(text: str, name: str) -> list[str]:
    """The cells after the name on the dialog's line for `name`."""
    [line] = [ln for ln in text.splitlines() if name in ln]
    return re.findall(r"[\w,-]+", line.split(name, 1)[1])


def test_dialog_shows_each_mailing_and_totals_that_leave_the_paused_one_out(tmp_path: Path) -> None:
    store = build_resume(tmp_path / "store.db")
    app = MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None)
    ids = {m.name: m.id for m in mailings.list_mailings(store, planned=True)}

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "R")
        text = screen_text(app)
        assert "20 will be sent now, 6 suspended by the 7-day rule, 8 held." in text
        # status, revision, send now, 7-day, held
        assert _row(text, "Spring sale") == ["sending", "2", "20", "0", "0"]
        assert _row(text, "Old list") == ["sending", "1", "0", "6", "0"]
        assert _row(text, "Autumn digest") == ["paused", "1", "0", "0", "8"]
        assert _row(text, "Total") == ["20", "6", "8"]
        await press(pilot, "y")
        assert not accounts.state(store).stopped

    drive(app, script, size=(80, 24))
    by_id = {name: mailings.get_mailing(store, mid) for name, mid in ids.items()}
    assert (by_id["Spring sale"].queued, by_id["Old list"].suspended, by_id["Autumn digest"].queued) == (20, 6, 8)
    assert by_id["Autumn digest"].status == "paused"
    entry = audit.entries(store, limit=1)[0]
    assert entry.action == "resume" and (entry.details["will_send"], entry.details["suspended"],
                                         entry.details["held"]) == (20, 6, 8)


def test_too_many_mailings_say_how_many_more(tmp_path: Path) -> None:
    """Past the rows the dialog has room for: "and N more", with the totals still over all of them."""
    store = build_resume(tmp_path / "store.db")
    plan = accounts.resume_preview(store)
    text = _render(plan_table(plan, max_rows=2))
    assert "Spring sale" not in text and "and 2 more (in the totals)" in text
    assert re.search(r"Total\s+20\s+6\s+8", text)
    assert "Spring sale" in _render(resume_body(plan, max_rows=3))


def _render(renderable) -> str:  # type: ignore[no-untyped-def]
    console = Console(width=70, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
