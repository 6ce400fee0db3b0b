"""The mailing detail view, the revision diff, the preview and the test send, driven through the keyboard.

The real app on the fixed store; the test send goes to an aiosmtpd server on
loopback through the engine's SMTP client, and what arrives is parsed with `email`.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from textual.widgets import Input, Static

from mailconsole.console.analytics_tab import MailingsTable
from mailconsole.console.detail import DetailLive, DetailScreen, DiffScreen
from mailconsole.console.diffing import Parts
from mailconsole.console.help_screen import HelpScreen
from mailconsole.console.modals import ConfirmScreen
from mailconsole.console.planned_tab import PlannedTab
from mailconsole.console.preview import PreviewScreen
from mailconsole.console.tables import LiveTable
from mailconsole.console.test_send_dialog import TestSendScreen
from mailconsole.engine.config import EngineConfig
from mailconsole.store import accounts, audit, queue, revisions
from mailconsole.store.mailings import get_mailing
from mailconsole.store.schema import messages

from .builder import ENGINE, OPERATOR
from .pilot import drive, press, screen_text, settle
from .test_launch import _ctx, ran  # noqa: F401 (ran: a fixture, what launch() would run)

SALE, OLD_LIST, FIRST_PLANNED = 3, 2, 4


async def open_detail(pilot, mailing_id: int, tab: str = "2") -> DetailScreen:  # type: ignore[no-untyped-def]
    """Select the mailing's row on `tab` and press Enter on it, as an operator does."""
    await press(pilot, tab)
    table = pilot.app.query_one(MailingsTable) if tab == "2" else pilot.app.query_one(PlannedTab).query_one(LiveTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(str(mailing_id)))
    await press(pilot, "enter")
    screen = pilot.app.screen
    assert isinstance(screen, DetailScreen) and screen.mailing_id == mailing_id
    return screen


def text_of(screen, selector: str) -> str:  # type: ignore[no-untyped-def]
    return str(screen.query_one(selector, Static).render())


def revision_rows(screen) -> list[list[str]]:  # type: ignore[no-untyped-def]
    table = screen.query_one("#detail-revisions", LiveTable)
    return [[str(c) for c in table.get_row(r.key)] for r in table.ordered_rows]


def message_rows(store, mailing_id: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return conn.execute(
            select(messages.c.id, messages.c.state, messages.c.attempts, messages.c.sent_at, messages.c.revision_id,
                   messages.c.last_error).where(messages.c.mailing_id == mailing_id).order_by(messages.c.id)
        ).all()


@dataclass
class Received:
    rcpt_tos: list[str]
    data: bytes


@dataclass
class Sink:
    """Keeps every message the server accepted; `data_replies` refuses the next ones on purpose."""

    messages: list[Received] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(Received(list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 2.0.0 queued as T1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)  # type: ignore[return-value]


@pytest.fixture
def sink() -> Iterator[tuple[EngineConfig, Sink]]:
    """An aiosmtpd server on loopback, and the engine configuration that sends to it."""
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield EngineConfig(transport=f"smtp://127.0.0.1:{port}", connect_timeout=5, command_timeout=5), handler
    controller.stop()


# -- opening and closing ------------------------------------------------------------


def test_enter_opens_the_detail_and_esc_goes_back_to_the_same_row(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, SALE)
        summary = text_of(screen, "#detail-summary")
        assert "Mailing 3 Spring sale" in summary
        assert "From: news@shop.example" in summary and "Reply-To: none" in summary
        assert "Subject: Spring sale: 50% off everything" in summary
        assert "Scheduled 2026-09-21 14:13:20 UTC" in summary and "status sending" in summary
        counters = text_of(screen, "#detail-counters")
        assert counters == ("50 recipients · 31 sent · 2 in flight · 15 queued · 2 failed · 0 suspended · "
                            "0 suppressed")
        table = app.query_one(MailingsTable)
        row = table.cursor_row
        await press(pilot, "escape")
        assert not isinstance(app.screen, DetailScreen)
        assert table.cursor_row == row and table.selected_key == str(SALE) and app.focused is table

    drive(app, script)


def test_enter_on_a_planned_row_opens_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, FIRST_PLANNED, tab="3")
        summary = text_of(screen, "#detail-summary")
        assert "Black Friday preview" in summary and "status planned" in summary and "(in 1d 2h)" in summary

    drive(app, script)


def test_enter_in_the_filter_keeps_the_filter_and_opens_nothing(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "slash", "s", "p", "r", "enter")
        assert not isinstance(app.screen, DetailScreen)
        assert app.query_one("#filter", Input).value == "spr" and isinstance(app.focused, MailingsTable)
        await press(pilot, "enter")  # now on the table: the one row left
        assert isinstance(app.screen, DetailScreen) and app.screen.mailing_id == SALE

    drive(app, script)


def test_the_full_name_is_shown(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, OLD_LIST)
        assert "Reactivation (old list)" in text_of(screen, "#detail-summary")
        assert "10 suspended" in text_of(screen, "#detail-counters")

    drive(app, script, size=(80, 24))


def test_the_detail_is_listed_in_help(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = screen_text(app)
        assert "Mailing details" in shown and "Mailing details: mark a revision" in shown

    drive(app, script, size=(120, 70))  # tall enough for the whole list without scrolling


# -- revisions, errors, live counters ---------------------------------------------


def test_every_revision_with_time_author_and_live_sent_count(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, SALE)
        assert revision_rows(screen) == [
            ["", "2", "2026-09-21 14:13:20", "alice", "5", "Spring sale: 50% off everything"],
            ["", "1", "2026-09-21 14:13:20", "alice", "26", "Spring sale: 50% off evrything"],
        ]
        errors = text_of(screen, "#detail-errors")
        assert "Last errors" in errors and "2 × 550 mailbox unavailable" in errors

        # An engine sends 3 more with revision 2 and fails 1 with a new error; the next read shows it.
        claimed = queue.claim(app.store, ENGINE, 4, lease_seconds=60)
        rev = revisions.newest_revision(app.store, SALE)
        queue.record(app.store, ENGINE, [queue.Outcome(c.id, c.mailing_id, "sent", rev.id) for c in claimed[:3]]
                     + [queue.Outcome(claimed[3].id, SALE, "failed", error="554 spam detected")])
        app.poll()
        await settle(pilot)
        assert "34 sent" in text_of(screen, "#detail-counters") and "3 failed" in text_of(screen, "#detail-counters")
        assert revision_rows(screen)[0][4] == "8"
        errors = text_of(screen, "#detail-errors")
        assert errors.index("554 spam detected") < errors.index("550 mailbox unavailable")

    drive(app, script)


def test_the_heavier_reads_run_off_the_ui_thread(make_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.console import detail

    threads: list[threading.Thread] = []
    real = detail.read_detail

    def spy(*args):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(detail, "read_detail", spy)
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        assert threads and all(t is not threading.main_thread() for t in threads)

    drive(app, script)


def test_a_new_revision_appears_while_the_detail_is_open(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, SALE)
        revisions.save_revision(app.store, OPERATOR, SALE, subject="Spring sale: 20% off everything")
        app.poll()
        await settle(pilot)
        assert [r[1] for r in revision_rows(screen)] == ["3", "2", "1"]
        assert "Subject: Spring sale: 20% off everything" in text_of(screen, "#detail-summary")

    drive(app, script)


# -- the diff -----------------------------------------------------------------------


def test_diff_defaults_to_the_newest_against_the_one_before(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await press(pilot, "c")
        assert isinstance(app.screen, DiffScreen)
        shown = text_of(app.screen, "#diff-text")
        assert "-Spring sale: 50% off evrything" in shown and "+Spring sale: 50% off everything" in shown
        assert "--- revision 1 subject" in shown and "+++ revision 2 subject" in shown
        await press(pilot, "escape")
        assert isinstance(app.screen, DetailScreen)

    drive(app, script)


def test_diff_of_two_chosen_revisions(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        revisions.save_revision(app.store, OPERATOR, SALE, text_body="Hello {{ first_name }},\n\nCorrected.\n")
        screen = await open_detail(pilot, SALE)
        await press(pilot, "m")  # revision 3, under the cursor
        assert revision_rows(screen)[0][0] == "*"
        await press(pilot, "down", "down", "c")  # against revision 1
        shown = text_of(app.screen, "#diff-text")
        assert "--- revision 1 subject" in shown and "+++ revision 3 subject" in shown
        assert "+++ revision 3 text" in shown and "+Corrected." in shown

    drive(app, script)


def test_diff_with_one_revision_says_so(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, OLD_LIST)
        await press(pilot, "c")
        assert isinstance(app.screen, DetailScreen)
        assert any("Revision 1 is the only one" in n.message for n in app._notifications)

    drive(app, script)


# -- the stop key ---------------------------------------------------------------------


@pytest.mark.parametrize(("key", "then"), [("f2", ""), ("exclamation_mark", ""), ("f2", "v"), ("f2", "c")])
def test_stop_key_works_on_the_detail_view_and_its_screens(make_app, key: str, then: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        if then:
            await press(pilot, then)
        shown = type(app.screen)
        await press(pilot, key)
        assert accounts.state(app.store).stopped
        assert type(app.screen) is shown  # nothing asked, nothing closed

    drive(app, script)


# -- preview --------------------------------------------------------------------------


def test_preview_of_the_next_recipient_then_one_typed(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await press(pilot, "v")
        assert isinstance(app.screen, PreviewScreen)
        rendered = app.screen.rendered
        assert rendered is not None and rendered.recipient.state == "queued" and rendered.revision == 2
        shown = text_of(app.screen, "#preview-message")
        assert f"To: {rendered.recipient.email}" in shown and "next in the queue" in shown
        assert "Subject: Spring sale: 50% off everything" in shown and "Message-ID: <m" in shown
        await press(pilot, "a")
        assert isinstance(app.focused, Input)
        await pilot.press(*"user0@example.org")
        await press(pilot, "enter")
        shown = text_of(app.screen, "#preview-message")
        assert "To: user0@example.org" in shown and "Hello Name0," in shown and "(message " in shown
        await press(pilot, "a")
        await pilot.press(*"ghost@example.org")
        await press(pilot, "enter")
        assert "Cannot be rendered: no recipient 'ghost@example.org' in mailing 3" in text_of(app.screen,
                                                                                             "#preview-message")

    drive(app, script)


def test_preview_of_unsaved_parts_and_errors_shown(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        app.push_screen(PreviewScreen(SALE, Parts("Fixed for {{ first_name }}", "Body {{ first_name }}\n",
                                                  "<b>{{ first_name }}</b>")))
        await settle(pilot)
        shown = text_of(app.screen, "#preview-message")
        assert "unsaved edit" in shown and "Subject: Fixed for Name" in shown
        assert "── HTML part (source) ──" in shown and "<b>Name" in shown
        await press(pilot, "escape")
        app.push_screen(PreviewScreen(SALE, Parts("Hi", "{{ 1 // 0 }}", None)))
        await settle(pilot)
        assert "Cannot be rendered: template cannot be rendered for" in text_of(app.screen, "#preview-message")

    drive(app, script)


# -- test send --------------------------------------------------------------------------


async def _test_send(pilot, to: str, recipient: str | None = None) -> None:  # type: ignore[no-untyped-def]
    await press(pilot, "s")
    assert isinstance(pilot.app.screen, TestSendScreen)
    await pilot.press(*to)
    if recipient is not None:
        await press(pilot, "tab")
        pilot.app.screen.query_one("#test-recipient", Input).value = ""
        await pilot.press(*recipient)
    await press(pilot, "enter")


def test_test_send_confirms_sends_and_leaves_the_recipient_alone(make_app, sink) -> None:  # type: ignore[no-untyped-def]
    config, handler = sink
    app = make_app(engine_config=config)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        before_rows, before = message_rows(app.store, SALE), get_mailing(app.store, SALE)
        await open_detail(pilot, SALE)
        await _test_send(pilot, "qa@ops.example", "user40@example.org")
        assert isinstance(app.screen, ConfirmScreen)
        body = str(app.screen.query_one(".dialog-body").render())
        assert "Send revision 2 as rendered for user40@example.org to qa@ops.example?" in body
        assert app.focused is app.screen.query_one("#no")  # Cancel first
        await press(pilot, "y")
        assert isinstance(app.screen, DetailScreen)
        [received] = handler.messages
        assert received.rcpt_tos == ["qa@ops.example"]
        msg = parse(received.data)
        assert msg["To"] == "user40@example.org" and msg["Subject"] == "Spring sale: 50% off everything"
        assert msg.get_content() == "Hello Name40,\n\nOur news.\n"
        assert message_rows(app.store, SALE) == before_rows
        after = get_mailing(app.store, SALE)
        assert (after.sent, after.queued, after.in_flight, after.failed) == (before.sent, before.queued,
                                                                            before.in_flight, before.failed)
        [entry] = [e for e in audit.entries(app.store) if e.action == "test-send"]
        assert (entry.actor, entry.mailing_id) == ("alice", SALE)
        assert entry.details["revision"] == 2 and entry.details["recipient"] == "user40@example.org"
        assert entry.details["to"] == "qa@ops.example" and entry.details["reply"].startswith("250")
        assert any("Test sent" in n.message and "250" in n.message for n in app._notifications)

    drive(app, script)


def test_test_send_from_the_preview_uses_the_recipient_shown(make_app, sink) -> None:  # type: ignore[no-untyped-def]
    config, handler = sink
    app = make_app(engine_config=config)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await press(pilot, "v")
        shown = app.screen.rendered.recipient.email
        await _test_send(pilot, "qa@ops.example")
        await press(pilot, "y")
        assert [parse(m.data)["To"] for m in handler.messages] == [shown]

    drive(app, script)


def test_a_bad_destination_is_refused_in_the_dialog(make_app, sink) -> None:  # type: ignore[no-untyped-def]
    config, handler = sink
    app = make_app(engine_config=config)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await _test_send(pilot, "qa at ops")
        assert isinstance(app.screen, TestSendScreen)
        assert "destination address 'qa at ops'" in text_of(app.screen, "#test-error")
        await press(pilot, "escape")
        assert isinstance(app.screen, DetailScreen) and handler.messages == []

    drive(app, script)


def test_cancel_sends_nothing(make_app, sink) -> None:  # type: ignore[no-untyped-def]
    config, handler = sink
    app = make_app(engine_config=config)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await _test_send(pilot, "qa@ops.example")
        await press(pilot, "enter")  # Enter on the focused Cancel
        assert isinstance(app.screen, DetailScreen)
        assert handler.messages == [] and not [e for e in audit.entries(app.store) if e.action == "test-send"]

    drive(app, script)


def test_with_the_null_transport_nothing_is_sent_and_it_says_so(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()  # no engine configuration: the defaults, null:

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await _test_send(pilot, "qa@ops.example")
        assert "nothing will be sent" in str(app.screen.query_one(".dialog-body").render())
        await press(pilot, "y")
        assert any("Test not sent" in n.message and "nothing was sent" in n.message for n in app._notifications)

    drive(app, script)


def test_a_refusing_server_is_reported(make_app, sink) -> None:  # type: ignore[no-untyped-def]
    config, handler = sink
    handler.data_replies.append("554 5.7.1 message refused")
    app = make_app(engine_config=config)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await _test_send(pilot, "qa@ops.example")
        await press(pilot, "y")
        assert any("Test not sent" in n.message and "554 5.7.1 message refused" in n.message
                   for n in app._notifications)

    drive(app, script)


def test_unreachable_server_is_reported(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(engine_config=EngineConfig(transport=f"smtp://127.0.0.1:{free_port()}", connect_timeout=2))

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await _test_send(pilot, "qa@ops.example")
        await press(pilot, "y")
        assert any("Test not sent" in n.message for n in app._notifications)

    drive(app, script)


def test_read_only_opens_the_detail_but_refuses_the_test_send(make_app, sink) -> None:  # type: ignore[no-untyped-def]
    config, handler = sink
    app = make_app(read_only=True, engine_config=config)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_detail(pilot, SALE)
        await press(pilot, "s")
        assert isinstance(app.screen, DetailScreen)
        assert any("Read-only console: test send refused" in n.message for n in app._notifications)

    drive(app, script)


def test_a_lazy_engine_configuration_is_read_once(make_app) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def load() -> EngineConfig:
        calls.append(1)
        return EngineConfig(transport="null:")

    app = make_app(engine_config=load)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        assert calls == []  # not at start: a console that only observes never loads the engine's settings
        await open_detail(pilot, SALE)
        await press(pilot, "v", "n")
        assert calls == [1] and isinstance(app.screen, PreviewScreen)

    drive(app, script)


def test_the_live_widget_is_fed_by_the_view(make_app) -> None:  # type: ignore[no-untyped-def]
    """The detail's counters are a LiveWidget: the app's refresh reaches it like every pane."""
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, SALE)
        assert app.selected_mailing() == SALE
        assert SALE in app.snapshot.revisions  # read for the mailing on screen
        assert screen.query_one(DetailLive) in list(screen.walk_children(DetailLive))

    drive(app, script)


def test_a_stopped_account_says_the_mailing_is_held(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, SALE)
        assert "status sending (held: the account is stopped)" in text_of(screen, "#detail-summary")

    drive(app, script)


def test_a_mailing_deleted_meanwhile_says_so(make_app) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.store import mailings

    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screen = await open_detail(pilot, SALE)
        mailings.delete_mailing(app.store, OPERATOR, SALE)
        app.poll()
        await settle(pilot)
        assert "Mailing 3 was deleted" in text_of(screen, "#detail-counters")

    drive(app, script)


# -- the engine configuration the console is given ------------------------------------------


def test_the_console_previews_with_its_embedded_engines_configuration(tmp_path, ran) -> None:  # type: ignore[no-untyped-def]
    import mailbox

    from mailconsole.console import launch

    box = tmp_path / "Maildir"
    mailbox.Maildir(box, create=True)
    ctx = _ctx(tmp_path / "s.db", transport=f"maildir:{box}")
    launch.launch(ctx)
    assert ran["engine_config"] is ran["engine"].engine.config
    ctx.close()


def test_an_observing_console_reads_the_configuration_only_when_needed(tmp_path, ran) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.console import launch
    from mailconsole.store import engines

    ctx = _ctx(tmp_path / "s.db", transport="smtp://relay.example:2525")
    store = ctx.store()
    engines.beat(store, "elsewhere:1", host="other", pid=1, workers=8, transport="null:",
                 started_at=store.now(), state="running")
    launch.launch(ctx)
    assert ran["engine"] is None and callable(ran["engine_config"])
    assert ran["engine_config"]().transport == "smtp://relay.example:2525"
    ctx.close()
