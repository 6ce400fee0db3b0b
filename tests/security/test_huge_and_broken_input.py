"""Huge values and broken recipient files: a clear refusal (with the line) or correct handling.

Imports are all-or-nothing: a file with one bad record anywhere creates no
mailing and leaves no row behind. The million-line import (time and bounded
memory) is measured by bench/import_scale.py, not here.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailconsole.engine.message import MergeError
from mailconsole.store import InvalidInput, mailings
from mailconsole.store.schema import mailings as mailings_table
from mailconsole.store.schema import messages, revisions

from .conftest import build, parse

GOOD = "a@example.net,Ann\nb@example.net,Bob\n"
TAIL = "y@example.net,Yan\nz@example.net,Zoe\n"


def nothing_stored(store) -> bool:  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return all(conn.execute(select(func.count()).select_from(t)).scalar_one() == 0
                   for t in (mailings_table, messages, revisions))


@pytest.mark.parametrize("broken, line, says", [
    ('c@example.net,"unterminated\n', 4, "broken CSV (unexpected end of data, read up to line 6)"),
    ("c@example.net,a\x00b\n", 4, "column 'name' has the control character \\x00"),
    ("c@example.net,Cy,extra\n", 4, "3 cells, the header has 2"),
    ("c@example.net\n", 4, "1 cells, the header has 2"),
    ("c@example.net," + "y" * 1_000_000 + "\n", 4, "field larger than field limit"),
    ("not-an-address,Cy\n", 4, "invalid address 'not-an-address'"),
    ("a@example.net,Ann again\n", 4, "duplicate recipient 'a@example.net' (first on line 2)"),
    ("c@example.net,\x1b[2J\n", 4, "control character \\x1b"),
])
def test_a_broken_line_in_the_middle_imports_nothing(store, tmp_path: Path, create, broken: str, line: int, says: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "broken.csv"
    path.write_text("email,name\n" + GOOD + broken + TAIL, encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        create(recipients=path)
    message = str(exc.value)
    assert f"line {line}" in message and says in message and "\n" not in message
    assert nothing_stored(store)


def test_not_utf8_imports_nothing(store, tmp_path: Path, create) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "latin1.csv"
    path.write_bytes(("email,name\n" + GOOD + "c@example.net,Jos\xe9\n" + TAIL).encode("latin-1"))
    with pytest.raises(InvalidInput, match="is not UTF-8"):
        create(recipients=path)
    assert nothing_stored(store)


def test_a_100_kb_subject_is_refused(create, store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="subject is 100,000 characters; the limit is 998"):
        create(subject="x" * 100_000)
    assert nothing_stored(store)


def test_a_100_kb_merge_value_is_handled(create, store) -> None:  # type: ignore[no-untyped-def]
    """Within the CSV reader's field limit (128 KiB) a value is accepted and built correctly."""
    big = "Ä" * 100_000
    mid = create([{"email": "a@example.net", "name": big}], subject="Hi {{ name }}")
    assert mailings.get_mailing(store, mid).queued == 1
    msg = parse(build("{{ name }}", subject="Hi {{ name }}", fields={"name": big}))
    assert msg["Subject"] == "Hi " + big  # folded into encoded words, read back whole
    assert msg.get_content().rstrip("\r\n") == big


def test_a_rendered_message_over_the_bound_fails_alone() -> None:
    """Ten 1.2 MB values in one body exceed the 10,000,000-character bound: that message fails."""
    fields = {f"f{i}": "y" * 1_200_000 for i in range(10)}
    body = "".join(f"{{{{ f{i} }}}}" for i in range(10))
    tracemalloc.start()
    try:
        with pytest.raises(MergeError, match="over 10,000,000 characters"):
            build(body, fields=fields)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 80_000_000  # bounded: a few copies of the bound, not of what was asked for


def test_ten_thousand_columns(store, tmp_path: Path, create) -> None:  # type: ignore[no-untyped-def]
    """A very wide file is accepted: every column is a merge field the template may use."""
    names = [f"c{i}" for i in range(10_000)]
    path = tmp_path / "wide.csv"
    path.write_text("email," + ",".join(names) + "\n" + "".join(
        f"u{j}@example.net," + ",".join(f"v{j}" for _ in names) + "\n" for j in range(5)), encoding="utf-8")
    mid = create(recipients=path, subject="Hi {{ c9999 }}", text_body="{{ c0 }}")
    assert mailings.get_mailing(store, mid).queued == 5
    with pytest.raises(InvalidInput) as exc:
        create(recipients=path, subject="Hi {{ nosuch }}")
    assert "unknown merge field 'nosuch'" in str(exc.value) and "\n" not in str(exc.value)
