"""Bad input: one clear line on stderr, a non-zero exit, nothing half-applied."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from store_backend import execute, sqlite_only


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def no_mailings(cli) -> bool:
    return json.loads(cli("mailings", "--planned", "--json").out) == []


@pytest.fixture
def create(cli, files):
    def run(csv_text: str, *extra: str, subject: str = "Hi {{ first_name }}", body: str = "Hello\n", encoding: str = "utf-8"):
        csv = files("r.csv", csv_text, encoding)
        body_path = files("b.txt", body)
        return cli("create", "--name", "N", "--from", "news@example.com", "--subject", subject,
                   "--body-file", str(body_path), "--recipients", str(csv), *extra)

    return run


def test_csv_without_email_column(cli, create):
    cli("init")
    r = create("address,first_name\na@example.com,A\n")
    assert r.code == 1 and "no 'email' column" in one_line(r.err) and no_mailings(cli)


def test_invalid_addresses_reported_with_line_numbers(cli, create):
    cli("init")
    r = create("email,first_name\na@example.com,A\nnot-an-address,B\nc@example.com,C\n")
    assert r.code == 1 and "line 3" in one_line(r.err) and "--skip-invalid" in r.err
    assert no_mailings(cli)
    ok = create("email,first_name\na@example.com,A\nnot-an-address,B\nc@example.com,C\n", "--skip-invalid")
    assert ok.code == 0 and "skipped 1" in ok.err
    assert json.loads(cli("mailings", "--json").out)[0]["recipients"] == 2


def test_duplicate_recipients(cli, create):
    cli("init")
    r = create("email,first_name\na@example.com,A\nb@example.com,B\na@example.com,A2\n")
    assert r.code == 1 and "duplicate recipient" in one_line(r.err) and "line 4" in r.err
    assert no_mailings(cli)


def test_non_utf8_file(cli, create):
    cli("init")
    r = create("email,first_name\nj@example.com,Jürgen\n", encoding="latin-1")
    assert r.code == 1 and "not UTF-8" in one_line(r.err) and no_mailings(cli)


def test_template_syntax_error(cli, create):
    cli("init")
    r = create("email,first_name\na@example.com,A\n", body="Hello\n{% if first_name %}\nno end\n")
    assert r.code == 1 and "body line" in one_line(r.err) and "is never closed" in r.err and no_mailings(cli)


def test_unknown_merge_field(cli, create):
    cli("init")
    r = create("email,first_name\na@example.com,A\n", subject="Hi {{ frist_name }}")
    assert r.code == 1 and "unknown merge field 'frist_name'" in one_line(r.err) and no_mailings(cli)


@pytest.mark.parametrize("sep", ["\r", "\n", "\u2028", "\x85"])
def test_line_breaks_in_header_values(cli, create, files, sep):
    cli("init")
    r = cli("create", "--name", "N", "--from", "news@example.com", "--subject", f"Hi{sep}Bcc: x@evil.example",
            "--body-file", str(files("b.txt", "x")), "--recipients", str(files("r.csv", "email\na@example.com\n")))
    assert r.code == 1 and "line break" in one_line(r.err)
    r = cli("create", "--name", f"N{sep}X", "--from", "news@example.com", "--subject", "S",
            "--body-file", str(files("b.txt", "x")), "--recipients", str(files("r.csv", "email\na@example.com\n")))
    assert r.code == 1 and "line break" in one_line(r.err)
    assert no_mailings(cli)


def test_line_break_in_merge_field_used_in_subject(cli, create):
    cli("init")
    r = create('email,first_name\na@example.com,"A\r\nBcc: victim@example.com"\n')
    assert r.code == 1 and "line 2" in one_line(r.err) and "line break" in r.err and no_mailings(cli)


def test_unknown_mailing_id(cli):
    cli("init")
    for args in (("delete", "99", "--yes"), ("pause", "99"), ("template", "show", "99"), ("requeue", "99")):
        r = cli(*args)
        assert r.code == 1 and "mailing 99 does not exist" in one_line(r.err)


def test_confirmation_refused_without_terminal(cli_process, cli, mailing):
    cli("init")
    mid = mailing(2)
    r = cli_process("delete", str(mid))
    assert r.code == 1 and "--yes" in one_line(r.err)
    cli("stop")
    r = cli_process("resume")
    assert r.code == 1 and "--yes" in one_line(r.err)
    assert json.loads(cli("status", "--json").out)["stopped"] is True
    assert len(json.loads(cli("mailings", "--json").out)) == 1


def test_usage_error_exits_2(cli_process):
    r = cli_process("delete")
    assert r.code == 2
    r = cli_process("create", "--recipients", "x.csv", "--at", "tomorrow-ish")
    assert r.code == 2 or r.code == 1


def test_missing_store_for_commands_that_need_one(cli_process, db):
    for command in (["status"], ["stop"], ["serve", "--transport", "null:"]):
        r = cli_process(*command)
        assert r.code == 1 and "mailconsole init" in one_line(r.err), command
        # A mistyped --db must not become an empty store an engine or a stop acts on.
        assert not Path(db).exists(), command


@sqlite_only("a corrupt file is an SQLite store's failure")
def test_corrupt_file(cli_process, db):
    with open(db, "wb") as f:
        f.write(b"this is not a database at all" * 100)
    r = cli_process("status")
    assert r.code == 1 and "not a mailconsole store" in one_line(r.err)


def test_newer_schema_refused(cli, cli_process, db):
    cli("init")
    execute(db, "UPDATE meta SET value='99' WHERE key='schema_version'")
    r = cli_process("status")
    assert r.code == 1 and "schema version 99" in one_line(r.err) and "upgrade" in r.err


@sqlite_only("holds SQLite's write lock (BEGIN IMMEDIATE); PostgreSQL's lock waits: tests/cli/test_pg_store.py")
def test_locked_database_waits_then_fails_clearly(cli, cli_process, db):
    """Commands other than stop, pause and delete give up after the busy timeout (those wait: test_busy_store)."""
    cli("init")
    cli("stop")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        r = cli_process("resume", "--yes", env={"MAILCONSOLE_BUSY_TIMEOUT_MS": "300"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.code == 1 and "locked" in one_line(r.err)
    assert json.loads(cli("status", "--json").out)["stopped"] is True


@sqlite_only("the store's file permissions; a PostgreSQL store's access is its roles")
def test_store_file_created_private(cli, db):
    cli("init")
    assert os.stat(db).st_mode & 0o777 == 0o600
