"""Names and values that carry terminal escapes or Rich markup are shown as text, never obeyed.

A mailing name, a stop reason, an actor or a merge value is data some other
person typed; an operator's terminal must not clear itself, retitle its window
or change colour because of it, and a bracket must stay a bracket. Checked in
the CLI's output (no ESC or other control byte reaches stdout) and in the
console (the cells and dialogs hold the literal characters; the rendered
screen holds no control character).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.text import Text

from console.pilot import drive, press
from mailconsole.cli import main
from mailconsole.console.analytics_tab import MailingsTable
from mailconsole.console.app import MailConsole
from mailconsole.store import InvalidInput, Store, accounts, audit, revisions

from .conftest import MALLORY, SENDER, write_csv

ESCAPES = "\x1b[2J\x1b]0;owned\x07\x1b[31m\x9b31m"
MARKUP = "[bold red]x[/] [link=https://evil.example]click[/link] [/]"
HOSTILE = f"{ESCAPES}{MARKUP}"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture
def hostile_store(tmp_path: Path) -> Path:
    """A store whose mailing name, merge value, subject and stop reason are all hostile."""
    db = tmp_path / "store.db"
    store = Store(str(db), clock=lambda: 1_790_000_000.0)
    try:
        from mailconsole.store.importer import create_mailing

        rows = write_csv(tmp_path / "r.csv", [{"email": "a@example.net", "name": MARKUP}])
        mid = create_mailing(store, MALLORY, name=HOSTILE, sender=SENDER, subject="Hi " + MARKUP + " {{ name }}",
                             text_body="Hello {{ name }}\n", html_body=None, recipients=rows).mailing_id
        # Templates with control characters are refused now; one saved before that must still show safely.
        with store.write() as conn:
            revisions.add(conn, mid, f"Hi {ESCAPES}{MARKUP}", f"{ESCAPES} {{{{ name }}}}\n", None, store.now(), "old")
        accounts.stop(store, MALLORY, reason=HOSTILE)
    finally:
        store.close()
    return db


def run_cli(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["--db", str(db), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out + err


@pytest.mark.parametrize("args", [["mailings"], ["status"], ["audit"], ["template", "show", "1"],
                                  ["resume", "--yes"], ["delete", "1", "--yes"]])
def test_cli_prints_data_as_text(hostile_store: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    out = run_cli(hostile_store, capsys, *args)
    assert not CONTROL.search(out), repr(out[:300])
    if args[0] != "resume":  # resume prints counts only
        assert "\\x1b" in out  # the escape is shown, visibly, instead of obeyed
    if args[0] in ("template", "delete", "status"):
        assert "[bold red]x[/]" in out or "[/]" in out  # brackets stay brackets (tables may cut a long name)


def test_cli_delete_confirmation_shows_the_name_as_text(hostile_store: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The question is asked on a terminal; answering no changes nothing."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda: "n")
    code = main(["--db", str(hostile_store), "delete", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and "Delete mailing 1" in out
    assert not CONTROL.search(out) and "[bold red]x[/]" in out and "[link=https://evil.example]" in out


def test_cli_unbalanced_markup_in_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    rows = write_csv(tmp_path / "r.csv", [{"email": "a@example.net", "name": "[/]"}])
    body = tmp_path / "b.txt"
    body.write_text("[/] {{ name }} [bold\n")
    run_cli(db, capsys, "init")
    run_cli(db, capsys, "create", "--name", "[/][/x] [", "--from", SENDER, "--subject", "[/] {{ name }}",
            "--body-file", str(body), "--recipients", str(rows))
    run_cli(db, capsys, "stop", "--reason", "[/]")
    for args in (["mailings"], ["status"], ["audit"], ["template", "show", "1"]):
        assert "[/]" in run_cli(db, capsys, *args)


def test_console_shows_hostile_data_as_text(hostile_store: Path) -> None:
    store = Store(str(hostile_store))
    app = MailConsole(store, clock=lambda: 1_790_000_000.0, actor=MALLORY, poll_interval=None)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        screens = [app.export_screenshot()]  # Settings/Other: the stop reason
        await press(pilot, "2")  # Sent Analytics
        table = app.query_one(MailingsTable)
        cell = table.get_cell("1", "name")
        assert isinstance(cell, Text) and cell.spans == []  # a Text, not markup: no styles taken from the data
        assert cell.plain.startswith("\\x1b[2J\\x1b]0;owned\\x07\\x1b[31m\\x9b31m[bold red]x[/]")
        screens.append(app.export_screenshot())
        await press(pilot, "d")  # the delete confirmation names the mailing
        # The name stands in the dialog's headline, the counts in its body: neither obeys markup or escapes.
        body = str(app.screen.query_one(".dialog-headline").render()) + str(app.screen.query_one(".dialog-body").render())
        assert "[bold red]x[/] [link=https://evil.example]click[/link] [/]" in body
        assert not CONTROL.search(body)
        screens.append(app.export_screenshot())
        await press(pilot, "n", "e")  # the template editor shows the control characters written out
        assert app.screen.body == "\\x1b[2J\\x1b]0;owned\\x07\\x1b[31m\\x9b31m {{ name }}\n"
        assert app.screen.subject.startswith("Hi \\x1b[2J")
        screens.append(app.export_screenshot())
        await press(pilot, "escape", "4")  # Audit
        screens.append(app.export_screenshot())
        for i, svg in enumerate(screens):
            m = CONTROL.search(svg.replace("\n", "").replace("\t", ""))
            assert not m, (i, svg.replace("\n", "").replace("\t", "")[m.start()-300:m.start()+100])
        assert "owned" in screens[0] and "evil.example" in screens[1]

    try:
        drive(app, script, size=(160, 40))
    finally:
        store.close()
    assert [e.action for e in audit.entries(store)][:1] == ["stop"]  # answering "n" deleted nothing


@pytest.mark.parametrize("part", ["subject", "text", "html"])
@pytest.mark.parametrize("char", ["\x1b", "\x07", "\x00", "\x9b", "\x7f"], ids=repr)
def test_templates_with_control_characters_are_refused(part: str, char: str) -> None:
    parts = {"subject": "Hi", "text": "Hello\r\n\tworld\n", "html": None}
    parts[part] = f"ok\nthen {char}[2J" if part != "subject" else f"Hi {char}[2J"
    with pytest.raises(InvalidInput, match=rf"line {1 if part == 'subject' else 2} has the control character"):
        revisions.validate(parts["subject"], parts["text"], parts["html"], [])
