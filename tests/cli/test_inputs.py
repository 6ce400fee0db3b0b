"""Every value an operator types is checked; accepted means sendable; nothing crashes a listing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from store_backend import execute
from mailconsole.cli.common import printable, safe, when
from mailconsole.store import Store
from mailconsole.store.importer import valid_address
from mailconsole.textsafety import BIDI, escape_terminal
from mailconsole.times import LATEST


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def create_args(files, csv: str = "email,first_name\na@example.com,A\n", **override: str) -> list[str]:  # type: ignore[no-untyped-def]
    opts = {"--name": "N", "--from": "news@example.com", "--subject": "Hi {{ first_name }}",
            "--body-file": str(files("b.txt", "Hello\n")), "--recipients": str(files("r.csv", csv)), **override}
    return ["create", *[x for kv in opts.items() for x in kv]]


def mailings(cli) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(cli("mailings", "--planned", "--json").out)


# -- times ---------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-05:00", "", "1969-07-20T20:17:00+00:00", "+10000-01-01"])
def test_a_time_the_program_cannot_show_is_refused_when_typed(cli, cli_process, files, at: str) -> None:  # type: ignore[no-untyped-def]
    """Before: accepted ('' even meant "now"); afterwards status and mailings crashed for everyone."""
    cli("init")
    r = cli_process(*create_args(files, **{"--at": at}))
    assert r.code == 2 and "--at" in one_line(r.err) and mailings(cli) == []


def test_a_stored_time_out_of_range_does_not_crash_status_or_mailings(cli, cli_process, mailing, db) -> None:  # type: ignore[no-untyped-def]
    """What an older release accepted stays readable: the value is shown as invalid, the rest as usual."""
    cli("init")
    mid = mailing(2)
    execute(db, "UPDATE mailings SET scheduled_at = :at WHERE id = :id", {"at": 253402318799.0 + 18000, "id": mid})
    execute(db, "UPDATE accounts SET stopped = true, stopped_at = :at, stopped_by = 'x'", {"at": 1e300})
    for args in (("status",), ("mailings", "--planned"), ("mailings",), ("audit",), ("status", "--json")):
        r = cli(*args)
        assert r.code == 0, (args, r.err)
    assert "(invalid time 253402336799.0)" in cli_process("mailings", "--planned", env={"COLUMNS": "250"}).out
    assert "(invalid time" in cli("status").out


def test_when_shows_every_float() -> None:
    assert when(None) == "-"
    assert when(0.0) == "1970-01-01 00:00:00 UTC"
    assert when(LATEST).startswith("9999-12-30")
    for bad in (LATEST + 86400 * 2, -1e18, float("nan"), float("inf"), 1e300):
        assert when(bad).startswith("(invalid time")


def test_the_console_shows_an_out_of_range_time_too() -> None:
    """The console's tables format times with the same function (console/format.py)."""
    from mailconsole.console.format import clock_time, short_time

    assert clock_time(253402318799.0 + 18000).startswith("(invalid time")
    assert short_time(1e300).startswith("(invalid time")
    assert clock_time(0.0, zone=False) == "1970-01-01 00:00:00"


# -- other values ----------------------------------------------------------------------


@pytest.mark.parametrize("args, option", [
    (("--account", "", "status"), "--account"),
    (("--db", "", "status"), "--db"),
    (("resume", "--preview", "--max-age-days", "nan"), "--max-age-days"),
    (("resume", "--preview", "--max-age-days", "-1"), "--max-age-days"),
    (("pause", str(2**64)), "ID"),
    (("pause", "--", "-3"), "ID"),
    (("audit", "--limit", "0"), "--limit"),
])
def test_bad_values_are_one_line_usage_errors(cli_process, cli, args: tuple[str, ...], option: str) -> None:
    """Before: --account ''/--db '' silently meant the default, NaN days suspended nothing,
    a 65-bit id was a traceback (OverflowError), --limit 0 listed nothing."""
    cli("init")
    r = cli_process(*args)
    assert r.code == 2 and option in one_line(r.err) and "Traceback" not in r.err


def test_an_unsupported_store_url_names_what_is_supported(cli_process) -> None:
    from mailconsole.store.connection import SUPPORTED_STORES

    r = cli_process("--db", "mysql://ops:secret@db.example/mail", "status")
    line = one_line(r.err)
    assert r.code == 2 and SUPPORTED_STORES in line and "secret" not in line


def test_argparse_errors_are_one_line(cli_process) -> None:
    for args in (("delete",), ("nosuchcommand",), ("status", "--bogus")):
        r = cli_process(*args)
        assert r.code == 2 and "usage error" in one_line(r.err)


def test_a_directory_as_a_file_is_refused(cli, files, tmp_path: Path) -> None:
    cli("init")
    for option in ("--body-file", "--recipients", "--html-file"):
        r = cli(*create_args(files, **{option: str(tmp_path)}))
        assert r.code == 1 and "is a directory" in one_line(r.err)
    r = cli("serve", "--config", str(tmp_path))
    assert r.code == 1 and "is a directory" in one_line(r.err)
    assert mailings(cli) == []


# -- addresses -------------------------------------------------------------------------


def test_a_non_ascii_sender_or_list_unsubscribe_is_refused(cli, files) -> None:
    """Before: accepted, and every `serve` then crashed on start."""
    cli("init")
    r = cli(*create_args(files, **{"--from": "s@bücher.de"}))
    assert r.code == 1 and "sender" in one_line(r.err) and "not ASCII" in r.err
    r = cli(*create_args(files, **{"--list-unsubscribe": "<mailto:désabonner@example.com>"}))
    assert r.code == 1 and "List-Unsubscribe" in one_line(r.err)
    r = cli(*create_args(files, **{"--list-unsubscribe": "unsubscribe@example.com"}))
    assert r.code == 1 and "angle brackets" in one_line(r.err)
    assert mailings(cli) == []
    ok = cli(*create_args(files, **{"--list-unsubscribe": "<mailto:u@example.com?subject=stop>, <https://example.com/u?i=1>"}))
    assert ok.code == 0, ok.err


def test_a_non_ascii_recipient_is_refused_naming_its_line(cli, files) -> None:
    cli("init")
    r = cli(*create_args(files, csv="email,first_name\na@example.com,A\nb@bücher.de,B\n"))
    assert r.code == 1 and "line 3" in one_line(r.err) and "not ASCII" in r.err and mailings(cli) == []


def test_like_refuses_an_old_mailings_bad_sender(cli, files, mailing, db) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    mid = mailing(1)
    execute(db, "UPDATE mailings SET sender = 's@bücher.de' WHERE id = :id", {"id": mid})
    args = [a for a in create_args(files) if a not in ("--from", "news@example.com")]
    r = cli(*args, "--like", str(mid))
    assert r.code == 1 and "--like" in one_line(r.err) and "--from" in r.err
    assert len(mailings(cli)) == 1
    assert cli(*args, "--like", str(mid), "--from", "ok@example.com").code == 0


def test_duplicates_are_found_with_the_domain_in_any_case(cli, files, db) -> None:
    """Before: a@Example.COM and a@example.com were two recipients (two messages to one mailbox)."""
    cli("init")
    r = cli(*create_args(files, csv="email,first_name\na@Example.COM,A\nb@example.com,B\na@example.com,C\n"))
    assert r.code == 1 and "duplicate recipient" in one_line(r.err) and "line 4" in r.err
    assert mailings(cli) == []
    # The local part is compared exactly (RFC 5321): Ann@ and ann@ may be two mailboxes.
    ok = cli(*create_args(files, csv="email,first_name\nAnn@Example.COM,A\nann@example.com,B\n"))
    assert ok.code == 0, ok.err
    stored = sorted(row[0] for row in execute(db, "SELECT email FROM messages"))
    assert stored == ["Ann@example.com", "ann@example.com"]


@pytest.mark.parametrize("address", ["a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie",
                                     "x@[192.0.2.1]", "a@xn--bcher-kva.de", "_@localhost", "a!#$%&*/=?^`{|}~@x.y"])
def test_an_accepted_address_is_one_the_engine_builds_a_message_for(address: str) -> None:
    """Accepted means sendable: the engine's builder takes it as sender and recipient unchanged."""
    from email.utils import parseaddr

    from mailconsole.engine.message import CompiledRevision, RevisionData

    assert valid_address(address)
    built = CompiledRevision(1, RevisionData(1, "Hi", "x", None, address, f"<mailto:{address}>")).build(1, address, {})
    assert built.envelope_from == address and built.recipient == address
    assert parseaddr(address)[1] == address


# -- /dev/stdin -------------------------------------------------------------------------


def test_recipients_from_stdin_are_imported(db, files, tmp_path: Path) -> None:
    """Before: the file was read three times; from a pipe the later passes found nothing."""
    env = {**os.environ, "TMPDIR": str(tmp_path / "spool")}
    (tmp_path / "spool").mkdir()
    run = lambda *a, stdin=b"": subprocess.run([sys.executable, "-m", "mailconsole", "--db", db, *a],  # noqa: E731
                                               input=stdin, capture_output=True, env=env, timeout=60)
    assert run("init").returncode == 0
    rows = "email,first_name\n" + "".join(f"u{i}@example.com,N{i}\n" for i in range(3000))
    args = create_args(files)
    args[args.index("--recipients") + 1] = "/dev/stdin"
    r = run(*args, stdin=rows.encode())
    assert r.returncode == 0, r.stderr
    listed = json.loads(run("mailings", "--json").stdout)
    assert listed[0]["recipients"] == 3000
    assert list((tmp_path / "spool").iterdir()) == []  # the private copy is gone


def test_a_spooled_copy_is_private(tmp_path: Path) -> None:
    from mailconsole.store.importer import _spooled

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'w').write('email\\na@example.com\\n')"])
    try:
        with _spooled(fifo) as copy:
            assert copy != fifo and copy.read_text() == "email\na@example.com\n"
            assert stat.S_IMODE(copy.stat().st_mode) == 0o600
            assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
        assert not copy.exists() and not copy.parent.exists()
    finally:
        writer.wait(timeout=30)


# -- what reaches the terminal --------------------------------------------------------------


def test_every_bidi_control_is_escaped() -> None:
    for ch in BIDI:
        assert ch not in escape_terminal(f"a{ch}b")
        assert f"\\u{ord(ch):04x}" in safe(f"a{ch}b")
    assert escape_terminal("a\x1b[2J\x9b\x7fb") == "a\\x1b[2J\\x9b\\x7fb"
    assert printable("line 1\n\tline 2") == "line 1\n\tline 2"  # a body keeps its lines
    assert safe("one\nline") == "one\\x0aline"  # a name or reason stays one line
    assert escape_terminal("Grüße, 東京, עברית") == "Grüße, 東京, עברית"  # letters are letters


def test_a_bidi_override_in_a_stop_reason_is_shown_escaped(cli, mailing) -> None:
    """Before: U+202E went to the terminal, which then printed the rest of the line reversed."""
    cli("init")
    mailing(1)
    assert cli("stop", "--reason", "by \u202eecilA").code == 0
    for args in (("status",), ("audit",)):
        out = cli(*args).out
        assert "\u202e" not in out and "\\u202e" in out


# -- no traceback ------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_the_traceback_is_opt_in(cli, mailing, db, cli_process) -> None:
    cli("init")
    mid = mailing(1)
    execute(db, "UPDATE mailings SET fields = '{not json' WHERE id = :id", {"id": mid})
    r = cli_process("mailings")
    line = one_line(r.err)
    assert r.code == 1 and line.startswith("mailconsole: internal error: ") and "MAILCONSOLE_DEBUG=1" in line
    r = cli_process("mailings", env={"MAILCONSOLE_DEBUG": "1"})
    assert r.code == 1 and "Traceback" in r.err


def test_store_open_refuses_an_empty_name() -> None:
    from mailconsole.store import StoreError

    with pytest.raises(StoreError, match="no store given"):
        Store("")
