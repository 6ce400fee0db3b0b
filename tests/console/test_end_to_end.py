"""Console + the engine inside it + a real SMTP server on loopback, driven by keys.

The incident, end to end: a mailing with a wrong subject is going out; the
operator presses the stop key mid-send and the server receives nothing more;
the subject is corrected in the editor; resume; the rest receive the corrected
subject, and the per-revision counts add up to what the server received.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.engine.config import EngineConfig
from mailconsole.engine.embedded import EmbeddedEngine
from mailconsole.store import Store, importer, mailings, status

from .builder import OPERATOR
from .pilot import press, settle
from .smtpsink import smtp_server  # noqa: F401  (fixture)

RECIPIENTS = 400
WRONG, RIGHT = "Sale: 300% off, {{ first_name }}", "Sale: 30% off, {{ first_name }}"


async def _until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("mode", ["thread", "guest"])
def test_stop_correct_resume(tmp_path: Path, smtp_server, mode: str) -> None:  # type: ignore[no-untyped-def]
    port, server = smtp_server
    store = Store(store_at(tmp_path / "e2e.db"))
    csv = tmp_path / "r.csv"
    csv.write_text("email,first_name\n" + "".join(f"r{i}@example.org,N{i}\n" for i in range(RECIPIENTS)))
    mid = importer.create_mailing(store, OPERATOR, name="Sale", sender="shop@example.com", subject=WRONG,
                                  text_body="Hello {{ first_name }}\n", html_body=None, recipients=csv).mailing_id
    # Paced so that the stop lands mid-send, as it would in a real incident.
    engine = EmbeddedEngine(store, EngineConfig(transport=f"smtp://127.0.0.1:{port}?starttls=off", workers=4, rate=150),
                            mode=mode)  # type: ignore[arg-type]
    if mode == "thread":
        engine.start()  # a guest engine is started by the app, on its loop
    app = MailConsole(store, actor=OPERATOR, engine=engine, poll_interval=0.2)

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(lambda: server.count >= 40, 20, "the first messages")
            await pilot.press("f2")
            await _until(lambda: app.stop_timings, 5, "the stop to commit")
            at_commit = server.count
            await _until(lambda: status.overview(store).quiescent, 5, "every engine to acknowledge the stop")
            at_quiet = server.count
            await asyncio.sleep(1.0)
            assert server.count == at_quiet, "the server received messages after the engines stopped"
            print(f"accepted at the stop's commit: {at_commit}, once quiescent: {at_quiet}")
            # Only a message whose final dot was already on the wire may land after the commit.
            assert at_quiet - at_commit <= 4
            sent_wrong = server.count
            assert 0 < sent_wrong < RECIPIENTS

            await press(pilot, "2", "e")
            pilot.app.screen.query_one("#subject", Input).value = RIGHT
            await press(pilot, "ctrl+s", "y")  # the body is left unchanged: asked, confirmed
            await press(pilot, "R", "y")
            await _until(lambda: server.count >= RECIPIENTS, 30, "the rest of the mailing")
            await _until(lambda: mailings.get_mailing(store, mid).status == "sent", 20, "the mailing to finish")
            await settle(pilot)
            await asyncio.sleep(0.5)

            subjects = server.subjects
            assert len(subjects) == RECIPIENTS  # no duplicates, nobody missing
            wrong = [s for s in subjects if "300%" in s]
            right = [s for s in subjects if "30% off" in s and "300%" not in s]
            assert len(wrong) == sent_wrong and len(right) == RECIPIENTS - sent_wrong
            assert all("300%" in s for s in subjects[:sent_wrong])  # the corrected ones all came after
            assert mailings.revision_counts(store, mid) == [(1, sent_wrong), (2, RECIPIENTS - sent_wrong)]
            expected = f"revision 1: {sent_wrong:,} sent · revision 2: {RECIPIENTS - sent_wrong:,} sent"
            await _until(lambda: expected in str(app.query_one("#revisions").render()), 5, "the counts on screen")

    try:
        asyncio.run(main())
    finally:
        engine.stop(timeout=10)
