"""Snapshots of what a screen must say truthfully: the resume plan per mailing, the delete
dialog's headline, gone engines, a running account with no engine, the quit question."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailconsole.console.app import MailConsole
from mailconsole.console.modals import ConfirmScreen
from mailconsole.console.quitting import QUIT_TITLE, quit_question
from mailconsole.store import engines, importer

from .builder import ENGINE, FIXED, OPERATOR, add_gone_engines, build, build_resume
from .conftest import HOST, STORE_LABEL
from .pilot import keys_pressed, settle

SIZES = [(80, 24), (120, 36)]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


def _app(store) -> MailConsole:  # type: ignore[no-untyped-def]
    return MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None, host=HOST,
                       store_label=STORE_LABEL)



@size_ids
def test_resume_plan(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    """Per mailing: revision, sent now, suspended by the 7-day rule, held (the paused one): 20 / 6 / 8."""
    assert snap_compare(_app(build_resume(tmp_path / "store.db")), run_before=keys_pressed("R"), terminal_size=size)


@size_ids
def test_resume_plan_many(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    """More mailings than rows: "and N more", totals over all of them."""
    store = build(tmp_path / "store.db", stopped=True)
    for n in (3, 4):
        _mailing(store, tmp_path, f"Follow-up {n}", n)
    assert snap_compare(_app(store), run_before=keys_pressed("R"), terminal_size=size)


def _mailing(store, tmp_path: Path, name: str, n: int) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / f"{name}.csv"
    csv.write_text("email,first_name\n" + "".join(f"{name[:3]}{i}@example.org,N{i}\n" for i in range(n)))
    importer.create_mailing(store, OPERATOR, name=name, sender="news@shop.example", subject="Hi {{ first_name }}",
                            text_body="Hello\n", html_body=None, recipients=csv)


def _long_named(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = build(tmp_path / "store.db")
    _mailing(store, tmp_path, "Spring sale 2026 — second reminder for loyalty members in Portugal, Spain and "
             "Italy (corrected list)", 9)
    return store


@size_ids
def test_delete_headline(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    """The mailing's whole name on its own band, and recipients / sent / unsent to drop."""
    assert snap_compare(_app(_long_named(tmp_path)), run_before=keys_pressed("2", "d"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES + [(60, 20)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_gone_engines(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    """Stopped: the gone engine says gone (not "not yet"), the old one is counted as hidden; at 60x20
    the state word and the drain line stay."""
    store = build(tmp_path / "store.db", stopped=True)
    add_gone_engines(tmp_path / "store.db")
    assert snap_compare(_app(store), terminal_size=size)


@size_ids
def test_no_engine(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    """Running with no live engine: the banner and the state say nothing is being sent."""
    store = build(tmp_path / "store.db")
    engines.forget(store, ENGINE)
    assert snap_compare(_app(store), terminal_size=size)


@size_ids
def test_quit_question(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    """The question asked before quitting a console whose engine is the only one sending."""

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        question = quit_question(pilot.app.view(), ENGINE)
        assert question is not None
        pilot.app.push_screen(ConfirmScreen(QUIT_TITLE, question, "Quit", id="quit-confirm"))
        await settle(pilot)

    assert snap_compare(_app(build(tmp_path / "store.db")), run_before=run, terminal_size=size)
