"""Text from the store never drives the terminal: controls and bidi overrides are shown written out.

A name, a stop reason, an actor, an engine's SMTP note and the audit details
each carry an escape sequence and a right-to-left override; on every tab the
screen shows them as `\\x1b` and `\\u202e`, and contains neither character.
"""

from __future__ import annotations

import re
from pathlib import Path

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.console.format import visible
from mailconsole.store import Actor, Store, accounts, engines, importer

from .builder import FIXED, OPERATOR
from .pilot import drive, press, screen_text

# Everything a terminal would obey rather than show (C0 but newline, DEL, C1, bidi controls).
OBEYED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
EVIL = "\x1b]0;pwned\x07\u202e"
SHOWN = "\\x1b]0;pwned\\x07\\u202e"


def _hostile_store(tmp_path: Path) -> Store:
    store = Store(store_at(tmp_path / "evil.db"), clock=lambda: FIXED)
    csv = tmp_path / "r.csv"
    csv.write_text("email,first_name\na@example.org,A\n", encoding="utf-8")
    importer.create_mailing(store, OPERATOR, name=f"name{EVIL}gpj.exe", sender="news@shop.example",
                            subject="Hi", text_body="Hi\n", html_body=None, recipients=csv)
    engines.beat(store, "mail-1:1", host=f"host{EVIL}", pid=1, workers=1, transport=f"smtp://relay{EVIL}",
                 started_at=FIXED - 60, state="running", in_flight=0, sent_rate=0.0, failed_rate=0.0,
                 sent_total=0, failed_total=0, acknowledged={}, note=f"421 relay says{EVIL}busy")
    accounts.stop(store, Actor(f"mallory{EVIL}", f"198.51.100.9{EVIL}"), reason=f"reason{EVIL}esumer")
    return store


def test_the_escaping_function() -> None:
    assert visible("a\x1bb\u202ec\u2066d\u200fe\u061cf\x9bg\x7f") == "a\\x1bb\\u202ec\\u2066d\\u200fe\\u061cf\\x9bg\\x7f"
    assert visible("line\n\ttab", keep="\n\t") == "line\n\ttab"
    assert visible("déjà vu – ok") == "déjà vu – ok"


def test_nothing_from_the_store_reaches_the_terminal_raw(tmp_path: Path) -> None:
    store = _hostile_store(tmp_path)
    app = MailConsole(store, account="default", clock=lambda: FIXED, actor=OPERATOR, poll_interval=None,
                      host="ops-1", store_label="/srv/m.db")

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        seen = {}
        for tab in ("1", "2", "4"):
            await press(pilot, tab)
            text = screen_text(app)
            assert not OBEYED.search(text), (tab, [hex(ord(c)) for c in OBEYED.findall(text)])
            seen[tab] = text
        settings, analytics, audit = seen["1"], seen["2"], seen["4"]
        assert "reason\\x1b]0;pwned" in settings  # the banner's stop reason
        assert f"mallory{SHOWN}" in settings  # the actor in the stop's facts
        assert "421 relay says\\x1b" in settings  # the engine's SMTP note
        assert "host\\x1b]0;pwned" in settings  # the engine row's host
        assert "name\\x1b]0;pwned" in analytics  # the mailing's name
        assert "reason=reason\\x1b]0;pwned" in audit  # audit details
        # A toast quotes operator data too.
        app.notify(f"no account named '{EVIL}'")
        await pilot.pause()
        assert not OBEYED.search(screen_text(app))

    drive(app, script, size=(200, 40))

