"""`mailconsole recipients`: the export on stdout or to a file, its summary, its refusals, a closed pipe."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from .conftest import Result

from mailconsole.store import Actor, Store, queue, revisions

OPERATOR = Actor("operator", "192.0.2.1")


def send_with_newest(db: str, mailing_id: int, n: int) -> list[int]:
    """Record n messages of the mailing as sent with its newest revision (as an engine would)."""
    store = Store(db)
    try:
        claimed = queue.claim(store, "test-engine", n, 30)
        rid = revisions.newest_revision(store, mailing_id).id
        queue.record(store, "test-engine", [queue.Outcome(c.id, c.mailing_id, "sent", revision_id=rid) for c in claimed])
        return [c.id for c in claimed]
    finally:
        store.close()


@pytest.fixture
def incident(cli, mailing, db):
    """Mailing 1 of 5: u0..u2 sent with revision 1, then revision 2 saved, u3 sent with it, u4 queued."""
    assert cli("init").code == 0
    mid = mailing(5)
    first = send_with_newest(db, mid, 3)
    store = Store(db)
    try:
        revisions.save_revision(store, OPERATOR, mid, subject="Corrected {{ first_name }}")
    finally:
        store.close()
    second = send_with_newest(db, mid, 1)
    return mid, first, second


def usage_or_run(cli, capsys, *args: str) -> Result:
    """cli(), and for a usage error (argparse exits before main() returns) its code and output."""
    try:
        return cli(*args)
    except SystemExit as exc:
        captured = capsys.readouterr()
        return Result(int(exc.code or 0), captured.out, captured.err)


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_csv_of_a_revision_goes_to_stdout(cli, incident):
    mid, first, _ = incident
    r = cli("recipients", str(mid), "--revision", "1")
    assert r.code == 0 and r.err == "", r.err
    rows = table(r.out)
    assert [row["email"] for row in rows] == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert list(rows[0]) == ["email", "first_name", "sent_at", "revision", "message_id", "state"]
    assert {row["revision"] for row in rows} == {"1"} and rows[0]["first_name"] == "N0"
    assert [row["message_id"].split(".")[0] for row in rows] == [f"<m{i}" for i in first]
    assert all(row["message_id"].endswith("@example.com>") for row in rows)
    assert [row["email"] for row in table(cli("recipients", str(mid), "--revision", "2").out)] == ["u3@example.com"]
    assert [row["email"] for row in table(cli("recipients", str(mid), "--state", "queued").out)] == ["u4@example.com"]


def test_csv_to_a_file_says_what_it_wrote_on_stderr(cli, incident, tmp_path):
    mid, _, _ = incident
    out = tmp_path / "wrong-mail.csv"
    r = cli("recipients", str(mid), "--revision", "1", "--csv", str(out))
    assert r.code == 0 and r.out == ""
    assert r.err == f"wrote 3 recipients of mailing {mid} revision 1 to {out}\n"
    assert len(table(out.read_text(encoding="utf-8"))) == 3
    r = cli("recipients", str(mid), "--state", "queued", "--csv", str(out))
    assert r.err == f"wrote 1 queued recipient of mailing {mid} to {out}\n"


def test_json_is_a_list_of_the_same_recipients(cli, incident):
    mid, first, _ = incident
    r = cli("recipients", str(mid), "--revision", "1", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [d["id"] for d in data] == first and data[0]["fields"] == {"first_name": "N0"}
    assert json.loads(cli("recipients", str(mid), "--state", "failed", "--json").out) == []


def test_the_message_domain_option_is_the_engines_setting(cli, incident, capsys):
    mid, _, _ = incident
    rows = table(cli("recipients", str(mid), "--message-domain", "mx.shop.example").out)
    assert rows and all(row["message_id"].endswith("@mx.shop.example>") for row in rows)
    bad = usage_or_run(cli, capsys, "recipients", str(mid), "--message-domain", "a b@c")
    assert bad.code == 2 and "is not a domain" in bad.err


@pytest.mark.parametrize("args, code, says", [
    (("99",), 1, "error: mailing 99 does not exist"),
    (("1", "--revision", "7"), 1, "error: mailing 1 has no revision 7 (it has revisions 1 to 2;"),
    (("1", "--revision", "1", "--state", "queued"), 1,
     "queued messages are not sent yet: they go out with the newest revision (2), not revision 1"),
    (("1", "--revision", "1", "--state", "failed"), 1, "failed messages were not sent, so they record no revision"),
    (("1", "--state", "claimed"), 2, "invalid choice: 'claimed'"),
    (("1", "--revision", "0"), 2, "0 is not a positive count"),
    (("1", "--csv", "/nonexistent-dir/x.csv"), 1, "directory /nonexistent-dir does not exist"),
    (("1", "--csv", "x.csv", "--json"), 2, "not allowed with argument"),
])
def test_bad_requests_are_one_line_and_write_nothing(cli, incident, tmp_path, monkeypatch, capsys, args, code, says):
    monkeypatch.chdir(tmp_path)
    r = usage_or_run(cli, capsys, "recipients", *args)
    assert r.code == code and r.out == ""
    assert says in r.err and r.err.count("\n") == 1, r.err
    assert not list(tmp_path.glob("*x.csv*"))


def test_a_closed_pipe_ends_quietly_with_141(db, incident):
    """`mailconsole recipients 1 | head -1` on more rows than a pipe holds."""
    mid, _, _ = incident
    proc = subprocess.Popen([sys.executable, "-m", "mailconsole", "--db", db, "recipients", str(mid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert (code, err) == (141, b"")


def test_a_reader_that_leaves_midway_stops_a_big_export_quietly(cli, mailing, db):
    """The reader takes the header and goes: the export does not run to its end, nor say more."""
    assert cli("init").code == 0
    mid = mailing(3000)  # ~250 KB of CSV: more than a pipe's buffer
    proc = subprocess.Popen([sys.executable, "-m", "mailconsole", "--db", db, "recipients", str(mid), "--state", "queued"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline().startswith(b"email,first_name,sent_at")
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert (code, err) == (141, b"")
