"""The hostile-input corpus (hostile_inputs.py) against real `mailconsole` processes.

Each refused input: exit 1 or 2 as listed, exactly one line on stderr naming the
problem, no traceback, no raw control or bidi character, the store unchanged and
no store created where a mistyped --db pointed. Escaped values: accepted, shown
escaped. Closed pipes: exit 141, nothing on stderr.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mailconsole import templating
from mailconsole.store import Actor, Store, accounts
from mailconsole.store.importer import create_mailing
from mailconsole.textsafety import has_unsafe

from . import hostile_inputs as corpus

ALL = [pytest.param(case, id=f"{cls}: {case.name}") for cls, cases in corpus.CLASSES.items() for case in cases]


def mailconsole(db: str | None, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """`mailconsole --db DB ARGS`; with db None the store comes from $MAILCONSOLE_DB."""
    where = ["--db", db] if db is not None else []
    return subprocess.run(
        [sys.executable, "-m", "mailconsole", *where, *args], input=stdin, capture_output=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def dump(db: str) -> str:
    con = sqlite3.connect(db)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """A store with mailing 1 (good) and mailing 2, whose sender an older release accepted unchecked."""
    tmp = tmp_path_factory.mktemp("hostile")
    files = corpus.prepare(tmp)
    db = str(tmp / "store.db")
    assert mailconsole(db, "init").returncode == 0
    for _ in range(2):
        r = mailconsole(db, *[corpus.fill(a, files) for a in corpus.create()])
        assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    con.execute("UPDATE mailings SET sender = 's@bücher.de' WHERE id = 2")
    con.commit()
    con.close()
    return db, files


@pytest.mark.parametrize("case", ALL)
def test_refused_with_one_line_and_nothing_changed(workspace: tuple[str, dict[str, str]], case: corpus.Case) -> None:
    db, files = workspace
    args = [corpus.fill(a, files) for a in case.args]
    if case.db is not None:
        other = corpus.fill(case.db, files)
        args = ["--db", other, *args]
        fresh = not Path(other).exists() and "://" not in other
    before = dump(db)
    r = mailconsole(None if "MAILCONSOLE_DB" in case.env else db, *args, stdin=case.stdin, env=case.env)
    err = r.stderr.decode("utf-8", "replace")
    lines = err.splitlines()
    assert b"Traceback" not in r.stderr, err
    assert len(lines) == 1, err
    assert r.returncode == case.code, err
    assert case.says.lower() in lines[0].lower(), err
    assert lines[0].startswith("mailconsole"), err
    assert not has_unsafe(lines[0]), repr(lines[0])
    assert ":pw@" not in err and "\npw" not in err, "a store URL's password was shown"
    assert dump(db) == before
    if case.db is not None and fresh:
        assert not Path(other).exists(), "a store was created at a mistyped path"


@pytest.fixture
def escaped_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(value: str) -> str:
        db = str(tmp_path / "escaped.db")
        csv = tmp_path / "r.csv"
        csv.write_text(corpus.GOOD_CSV)
        store = Store(db)
        try:
            name = value if not templating.has_line_break(value) else "plain name"
            create_mailing(store, Actor("mallory"), name=name, sender="news@example.com", subject="Hi",
                           text_body="x", html_body=None, recipients=csv)
            accounts.stop(store, Actor("mallory"), reason=value)
        finally:
            store.close()
        return db

    return make


@pytest.mark.parametrize("what, value, shown", corpus.ESCAPED, ids=[e[0] for e in corpus.ESCAPED])
def test_escapes_and_bidi_are_shown_escaped(escaped_store, what: str, value: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    db = escaped_store(value)
    for args in (("status",), ("mailings",), ("audit",)):
        r = mailconsole(db, *args)
        out = (r.stdout + r.stderr).decode("utf-8")
        assert r.returncode == 0, out
        assert not has_unsafe(out.replace("\n", "")), f"{args}: {out!r}"
        if args == ("status",):  # the reason is printed whole there
            assert shown in out, out


@pytest.mark.parametrize("args", corpus.PIPED, ids=[" ".join(a) for a in corpus.PIPED])
def test_a_closed_pipe_ends_quietly(workspace: tuple[str, dict[str, str]], args: tuple[str, ...]) -> None:
    """`mailconsole … | head -1`: the reader is gone before anything is written."""
    db, _ = workspace
    proc = subprocess.Popen([sys.executable, "-m", "mailconsole", "--db", db, *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: its first write meets no reader
    try:
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert err == b"", err.decode()
    assert code == 141


def test_the_corpus_counts() -> None:
    """The figures docs/reliability.md quotes; the corpus only grows."""
    numbers = corpus.counts()
    assert all(n > 0 for n in numbers.values())
    assert sum(numbers.values()) >= 234
