"""The stop key: from every tab, dialog and the editor; never asks; never resumes."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from mailconsole.console.banner import StateBanner
from mailconsole.console.editor import TemplateEditor
from mailconsole.console.modals import ConfirmScreen
from mailconsole.store import accounts

from .pilot import drive, press, settle


def _shows_stopped(app) -> bool:  # type: ignore[no-untyped-def]
    return all(b.has_class("-stopped") for s in app.screen_stack for b in s.query(StateBanner))


def _shows_requested(app) -> bool:  # type: ignore[no-untyped-def]
    return all(b.has_class("-requested") for s in app.screen_stack for b in s.query(StateBanner))


@pytest.mark.parametrize("tab", ["1", "2", "3", "4"])
@pytest.mark.parametrize("key", ["f2", "exclamation_mark"])
def test_stop_from_every_tab(make_app, tab: str, key: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, tab)
        await pilot.press(key)
        # At once: STOPPED if saved (usually, within the key's head start), else STOP REQUESTED.
        assert _shows_stopped(app) or _shows_requested(app)
        await settle(pilot)
        assert accounts.state(app.store).stopped
        assert _shows_stopped(app) and not app.stop_pending
        assert app.screen is app.screen_stack[0]  # nothing was asked

    drive(app, script)


def test_the_key_shows_stopped_only_once_saved(make_app) -> None:  # type: ignore[no-untyped-def]
    """The commit runs during the key's handler: its first frame says STOPPED if, and only if, it is saved."""
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        app.action_emergency_stop()
        if _shows_stopped(app):
            assert accounts.state(app.store).stopped and app.stop_pending
        else:  # a slow commit: the request is on screen, never STOPPED
            assert app.stop_progress is not None and "STOP REQUESTED" in str(app.query_one("#banner").render())
        await settle(pilot)
        assert accounts.state(app.store).stopped and _shows_stopped(app) and not app.stop_pending
        assert len(app.stop_timings) == 1

    drive(app, script)


def test_stop_in_a_dialog(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2", "d")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "exclamation_mark")
        assert accounts.state(app.store).stopped
        assert isinstance(app.screen, ConfirmScreen)  # the dialog stays; nothing was deleted
        await press(pilot, "n")
        assert len(app.snapshot.mailings) == 7

    drive(app, script)


def test_stop_in_the_editor_while_typing(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2", "e")
        assert isinstance(app.screen, TemplateEditor)
        subject = app.screen.query_one("#subject", Input)
        assert app.focused is subject
        await press(pilot, "end", "exclamation_mark")
        assert subject.value.endswith("!")  # typing: "!" is just a character here
        assert not accounts.state(app.store).stopped
        await press(pilot, "f2")
        assert accounts.state(app.store).stopped
        assert _shows_stopped(app)
        assert not app.screen.query_one("#editor-warning").display  # warning goes once stopped

    drive(app, script)


def test_pressing_again_never_resumes(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        before = accounts.state(app.store)
        await press(pilot, "f2", "f2", "exclamation_mark")
        after = accounts.state(app.store)
        assert after.stopped and after.generation == before.generation
        assert not isinstance(app.screen, ConfirmScreen)

    drive(app, script)


def test_read_only_refuses_the_stop(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(read_only=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "f2")
        assert not accounts.state(app.store).stopped
        assert not _shows_stopped(app)
        assert any("read-only" in n.message.lower() for n in app._notifications)
        for key in ("2", "d", "p", "e", "u"):
            await press(pilot, key)
        assert len(app.snapshot.mailings) == 7 and app.screen is app.screen_stack[0]

    drive(app, script)
