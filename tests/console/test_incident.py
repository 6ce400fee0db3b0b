"""The whole incident, by keys, with the engine inside the console and a real SMTP server on loopback.

A mailing says "30% off" in its subject, text and HTML where it should say
"20%". The operator stops it mid-send, opens its detail view, previews what the
next recipient would get, corrects all three parts, compares the revisions, sends
a test to themselves, exports who got the faulty revision, and resumes. The rest
receive the corrected parts, and the export is exactly who the server received
the faulty one for, with the same Message-IDs.
"""

from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path

from textual.widgets import Input, Static, TextArea

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.console.detail import DetailScreen, DiffScreen
from mailconsole.console.editor import TemplateEditor
from mailconsole.console.export_dialog import ExportScreen
from mailconsole.console.modals import ConfirmScreen
from mailconsole.console.preview import PreviewScreen
from mailconsole.console.test_send_dialog import TestSendScreen
from mailconsole.engine.config import EngineConfig
from mailconsole.engine.embedded import EmbeddedEngine
from mailconsole.store import Store, audit, importer, mailings, status

from .builder import OPERATOR
from .pilot import press, settle
from .smtpsink import smtp_server  # noqa: F401  (fixture)

RECIPIENTS = 300
SUBJECT = "Sale: 30% off, {{ first_name }}"
TEXT = "Hello {{ first_name }},\n30% off everything today.\n"
HTML = "<p>Hello {{ first_name }},</p>\n<p><b>30% off</b> everything today.</p>\n"
ONCALL = "oncall@example.net"


def _fixed(part: str) -> str:
    return part.replace("30%", "20%")


async def _until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _parts(msg) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return str(msg["Subject"]), text, html


def test_stop_detail_preview_correct_test_send_export_resume(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    port, server = smtp_server
    store = Store(store_at(tmp_path / "incident.db"))
    rows = tmp_path / "r.csv"
    rows.write_text("email,first_name\n" + "".join(f"r{i}@example.org,N{i}\n" for i in range(RECIPIENTS)))
    mid = importer.create_mailing(store, OPERATOR, name="Spring sale", sender="Shop <shop@example.com>",
                                  subject=SUBJECT, text_body=TEXT, html_body=HTML, recipients=rows).mailing_id
    config = EngineConfig(transport=f"smtp://127.0.0.1:{port}?starttls=off", workers=4, rate=150)
    engine = EmbeddedEngine(store, config, mode="thread")  # type: ignore[arg-type]
    engine.start()
    app = MailConsole(store, actor=OPERATOR, engine=engine, engine_config=config, poll_interval=0.2)
    export = tmp_path / "got-the-wrong-mail.csv"

    async def main() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            await _until(lambda: server.count >= 40, 20, "the first messages")
            await pilot.press("f2")
            await _until(lambda: status.overview(store).quiescent, 5, "every engine to acknowledge the stop")
            sent_wrong = server.count
            assert sent_wrong < RECIPIENTS

            # The detail view of the mailing, then what the next recipient would get now.
            await press(pilot, "2", "enter")
            assert isinstance(app.screen, DetailScreen)
            assert "Spring sale" in str(app.screen.query_one("#detail-summary", Static).render())
            await press(pilot, "v", "n")
            assert isinstance(app.screen, PreviewScreen)
            await settle(pilot)
            shown = str(app.screen.query_one("#preview-message", Static).render())
            assert "<b>30% off</b>" in shown and "30% off everything" in shown
            await press(pilot, "escape", "escape")

            # The correction: subject, text and HTML.
            await press(pilot, "e")
            editor = app.screen
            assert isinstance(editor, TemplateEditor)
            editor.query_one("#subject", Input).value = _fixed(SUBJECT)
            editor.query_one("#body", TextArea).text = _fixed(TEXT)
            editor.query_one("#html", TextArea).text = _fixed(HTML)
            await press(pilot, "ctrl+s")
            await _until(lambda: not isinstance(app.screen, TemplateEditor), 5, "the save")
            assert [n for n, _ in mailings.revision_counts(store, mid)] == [1, 2]

            # The two revisions compared: every part differs.
            await press(pilot, "enter")
            assert isinstance(app.screen, DetailScreen)
            await settle(pilot)
            await press(pilot, "c")
            assert isinstance(app.screen, DiffScreen)
            diff = "\n".join(str(w.render()) for w in app.screen.query(Static))
            assert "-Sale: 30% off" in diff and "+Sale: 20% off" in diff
            assert "-<p><b>30% off</b> everything today.</p>" in diff and "+<p><b>20% off</b>" in diff
            await press(pilot, "escape")

            # A test to the operator, as the next recipient would get it.
            await press(pilot, "s")
            assert isinstance(app.screen, TestSendScreen)
            app.screen.query_one("#test-to", Input).value = ONCALL
            await press(pilot, "enter")
            assert isinstance(app.screen, ConfirmScreen)
            await press(pilot, "y")
            await _until(lambda: any(ONCALL in r for r, _ in server.messages), 10, "the test send")
            [(_, test_msg)] = [(r, m) for r, m in server.messages if ONCALL in r]
            assert all("20%" in p and "30%" not in p for p in _parts(test_msg))

            # Who got the faulty revision: revision 1, below the newest in the list.
            await press(pilot, "down", "x")
            assert isinstance(app.screen, ExportScreen)
            app.screen.query_one("#export-path", Input).value = str(export)
            await press(pilot, "enter")
            await _until(export.exists, 10, "the export")
            await press(pilot, "escape")

            await press(pilot, "R", "y")
            await _until(lambda: server.count >= RECIPIENTS + 1, 30, "the rest of the mailing")
            await _until(lambda: mailings.get_mailing(store, mid).status == "sent", 20, "the mailing to finish")
            await settle(pilot)

            received = [(r, m) for r, m in server.messages if ONCALL not in r]
            by_rcpt = {r[0]: m for r, m in received}
            assert len(received) == len(by_rcpt) == RECIPIENTS  # nobody twice, nobody missing
            wrong = {(r, str(m["Message-ID"])) for r, m in by_rcpt.items() if "30%" in str(m["Subject"])}
            assert len(wrong) == sent_wrong
            for r, m in by_rcpt.items():
                subject, text, html = _parts(m)
                if (r, str(m["Message-ID"])) not in wrong:
                    assert "20% off" in subject and "20% off everything" in text and "<b>20% off</b>" in html
                    assert "30%" not in subject + text + html
            with export.open(newline="", encoding="utf-8") as f:
                exported = {(row["email"], row["message_id"]) for row in csv.DictReader(f)}
            assert exported == wrong
            assert mailings.revision_counts(store, mid) == [(1, sent_wrong), (2, RECIPIENTS - sent_wrong)]
            assert mailings.get_mailing(store, mid).sent == RECIPIENTS  # the test send is not a recipient's
            actions = [e.action for e in audit.entries(store, limit=50)]
            assert {"stop", "template", "test-send", "resume"} <= set(actions)

    try:
        asyncio.run(main())
    finally:
        engine.stop(timeout=10)
