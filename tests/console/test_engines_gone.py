"""Engines that are gone: marked gone (never "not yet" honouring a stop), out of the quiescence
line, hidden after GONE_LISTED_FOR with a count; and a running account with no live engine
never headlines as sending."""

from __future__ import annotations

from pathlib import Path

from mailconsole.console.app import MailConsole
from mailconsole.store import engines, status

from .builder import ENGINE, FIXED, OPERATOR, add_gone_engines, build
from .pilot import drive, screen_text


def _line(text: str, start: str) -> str:
    [line] = [ln for ln in text.splitlines() if ln.strip().startswith(start)]
    return line


def _app(path: Path, stopped: bool) -> MailConsole:
    store = build(path, stopped=stopped)
    add_gone_engines(path)
    return MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None)


def test_a_gone_engine_is_marked_gone_and_an_old_one_hidden(tmp_path: Path) -> None:
    app = _app(tmp_path / "store.db", stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        text = screen_text(app)
        assert "not yet" not in text
        gone = _line(text, "mail-2").split()
        assert gone[:6] == ["mail-2", "77", "4", "-", "-", "gone"]
        assert _line(text, "mail-1").split()[5] == "yes"
        assert "mail-3" not in text  # gone 20 minutes ago
        assert "Engines · 1 live · 1 gone · 1 gone engine hidden (gone > 10 min)" in text
        assert "1/1 engines stopped  ✔ quiescent" in text

    drive(app, script, size=(120, 36))


def test_at_60x20_the_state_word_and_the_drain_line_stay_visible(tmp_path: Path) -> None:
    app = _app(tmp_path / "store.db", stopped=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        text = screen_text(app)
        assert "■  STOPPED  ■" in text
        assert "1/1 engines stopped" in text

    drive(app, script, size=(60, 20))


def test_the_overview_counts_hidden_engines(tmp_path: Path) -> None:
    store = build(tmp_path / "store.db")
    add_gone_engines(tmp_path / "store.db")
    ov = status.overview(store)
    assert [(e.host, e.alive) for e in ov.engines] == [("mail-2", False), ("mail-1", True)]
    assert ov.hidden_engines == 1 and ov.as_dict()["hidden_engines"] == 1
    assert status.hidden_engines_note(ov) == "1 gone engine hidden (gone > 10 min)"


def test_running_without_a_live_engine_says_nothing_is_sent(tmp_path: Path) -> None:
    store = build(tmp_path / "store.db")
    engines.forget(store, ENGINE)
    app = MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        text = screen_text(app)
        assert text.splitlines()[0].strip().startswith("● RUNNING — no engine: nothing is being sent")
        assert "RUNNING — NO ENGINE: NOTHING IS SENT" in text
        assert "mailings go out" not in text and "Mailings of this account go out" not in text

    drive(app, script, size=(80, 24))
