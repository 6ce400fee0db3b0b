"""Creating a mailing from a recipients CSV: the happy path, progress, and every bad input.

Every refusal is one line that says what to do, and leaves nothing behind:
no mailing, no messages, no 'create' audit entry.
"""

from __future__ import annotations

import json

import pytest
from storehelp import ALICE, SENDER, actual_states, recipients

from mailconsole.store import InvalidInput, Store, audit, mailings, revisions
from mailconsole.store.importer import create_mailing

HOUR = 3600.0


def create(store, path, **kw):
    args = dict(name="Autumn sale", sender=SENDER, subject="Hello {{ name }}",
                text_body="Dear {{ name }} in {{ city }}\n", html_body=None, recipients=path)
    args.update(kw)
    return create_mailing(store, ALICE, **args)


def assert_nothing_applied(store):
    with store.read() as conn:
        for table in ("mailings", "messages", "revisions"):
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() == 0, table
    assert [e for e in audit.entries(store, limit=100) if e.action == "create"] == []


def refused(store, path, match, **kw) -> str:
    with pytest.raises(InvalidInput, match=match) as info:
        create(store, path, **kw)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    assert_nothing_applied(store)
    return message


# -- the happy path -------------------------------------------------------------


def test_import_expands_recipients_with_merge_fields(store, clock, csv_file):
    path = csv_file([{"email": "ann@example.net", "name": "Ann", "city": "Graz"},
                     {"email": " bob@example.net ", "name": "Bob", "city": "Linz"}])
    result = create(store, path)

    assert (result.recipients, result.skipped, result.status) == (2, 0, "sending")
    m = mailings.get_mailing(store, result.mailing_id)
    assert (m.fields, m.recipients, m.expected, m.queued, m.scheduled_at) == (["name", "city"], 2, 2, 2, clock.now)
    with store.read() as conn:
        rows = conn.exec_driver_sql("SELECT email, fields, state, due_at FROM messages ORDER BY id").all()
    assert [(r[0], json.loads(r[1]), r[2], r[3]) for r in rows] == [
        ("ann@example.net", {"name": "Ann", "city": "Graz"}, "queued", clock.now),
        ("bob@example.net", {"name": "Bob", "city": "Linz"}, "queued", clock.now),  # address trimmed
    ]
    assert revisions.newest_revision(store, m.id).number == 1
    entry = audit.entries(store, limit=1)[0]
    assert (entry.action, entry.mailing_id, entry.details["recipients"], entry.actor) == ("create", m.id, 2, "alice")


def test_future_schedule_is_planned_and_past_is_sending(store, clock, csv_file):
    later = create(store, csv_file(recipients(2, city="Graz")), at=clock.now + HOUR)
    earlier = create(store, csv_file(recipients(2, city="Graz")), at=clock.now - HOUR)
    assert later.status == "planned" and earlier.status == "sending"
    assert actual_states(store, later.mailing_id) == {"queued": 2}
    assert [m.id for m in mailings.list_mailings(store, only_planned=True)] == [later.mailing_id]
    assert [m.id for m in mailings.list_mailings(store)] == [earlier.mailing_id]  # planned hidden by default
    with store.read() as conn:
        due = conn.exec_driver_sql(f"SELECT DISTINCT due_at FROM messages WHERE mailing_id={later.mailing_id}").scalars().all()
    assert due == [clock.now + HOUR]


def test_preparing_is_visible_with_progress_to_other_connections(store, db_path, clock, csv_file):
    path = csv_file(recipients(25, city="Graz"))
    observer = Store(str(db_path), clock=clock)
    seen = []

    def progress(done: int, total: int) -> None:
        [m] = mailings.list_mailings(observer)
        seen.append((done, total, m.status, m.recipients, m.expected, m.queued))

    create(store, path, batch_size=10, progress=progress)
    after = mailings.list_mailings(observer)[0]
    observer.close()

    assert seen == [(10, 25, "preparing", 10, 25, 10), (20, 25, "preparing", 20, 25, 20), (25, 25, "preparing", 25, 25, 25)]
    assert after.status == "sending"


def test_blank_lines_are_ignored(store, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("email,name,city\n\nann@example.net,Ann,Graz\n\n", encoding="utf-8")
    assert create(store, path).recipients == 1


def test_utf8_with_bom_is_accepted(store, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("email,name,city\r\nzoe@example.net,Zoë,Wien\r\n".encode("utf-8-sig"))
    result = create(store, path)
    assert result.recipients == 1
    assert mailings.get_mailing(store, result.mailing_id).fields == ["name", "city"]


# -- bad inputs -------------------------------------------------------------------


def test_no_email_column(store, csv_file):
    path = csv_file([["ann@example.net", "Ann", "Graz"]], header=["mail", "name", "city"])
    refused(store, path, r"r.*has no 'email' column in its header row \(found: mail, name, city\)")


def test_empty_file(store, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    refused(store, path, r"empty.csv is empty; it needs a header row with an 'email' column")


def test_header_only(store, csv_file):
    path = csv_file([], header=["email", "name", "city"])
    refused(store, path, r"has no recipients \(only a header row\); nothing to send")


def test_invalid_addresses_name_their_lines_and_nothing_is_imported(store, csv_file):
    rows = recipients(3, city="Graz")
    rows[1]["email"] = "not-an-address"
    rows[2]["email"] = "two@@example.net"
    message = refused(store, csv_file(rows), r"line 3: invalid address 'not-an-address'; and 1 more bad row")
    assert "--skip-invalid" in message


def test_invalid_addresses_can_be_skipped_and_are_counted(store, csv_file):
    rows = recipients(4, city="Graz")
    rows[0]["email"] = "nobody"
    result = create(store, csv_file(rows), skip_invalid=True)
    assert (result.recipients, result.skipped) == (3, 1)
    assert audit.entries(store, limit=1)[0].details["skipped"] == 1


def test_only_invalid_addresses_even_when_skipping(store, csv_file):
    rows = recipients(2, city="Graz")
    for r in rows:
        r["email"] = "x"
    refused(store, csv_file(rows), r"has no valid recipients; nothing to send", skip_invalid=True)


def test_duplicate_within_a_batch(store, csv_file):
    rows = recipients(3, city="Graz")
    rows[2]["email"] = rows[0]["email"]
    refused(store, csv_file(rows), r"line 4: duplicate recipient 'user0@example.net' \(first on line 2\)")


def test_duplicate_across_batches_leaves_nothing_behind(store, csv_file):
    """The first batches were already written when the duplicate turns up: they are taken back."""
    rows = recipients(12, city="Graz")
    rows[11]["email"] = rows[1]["email"]
    refused(store, csv_file(rows), r"line 13: duplicate recipient 'user1@example.net' \(already on an earlier line\)", batch_size=5)


def test_duplicates_skipped_and_counted(store, csv_file):
    rows = recipients(12, city="Graz")
    rows[4]["email"] = rows[3]["email"]  # same batch
    rows[11]["email"] = rows[1]["email"]  # a later batch
    result = create(store, csv_file(rows), batch_size=5, skip_invalid=True)
    assert (result.recipients, result.skipped) == (10, 2)
    assert actual_states(store, result.mailing_id) == {"queued": 10}


def test_non_utf8_file(store, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name,city\nann@example.net,Jürgen,Graz\n".encode("latin-1"))
    refused(store, path, r"latin1.csv is not UTF-8 .*; save it as UTF-8 and retry")


def test_broken_csv_line_in_the_middle(store, tmp_path):
    path = tmp_path / "broken.csv"
    good = "".join(f"user{i}@example.net,User {i},Graz\n" for i in range(5))
    path.write_text("email,name,city\n" + good + 'bad@example.net,"Ann"x,Graz\n' + good.replace("user", "more"), encoding="utf-8")
    refused(store, path, r"broken.csv line 7: broken CSV")


def test_row_with_the_wrong_number_of_cells(store, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("email,name,city\nann@example.net,Ann\n", encoding="utf-8")
    refused(store, path, r"line 2: 2 cells, the header has 3")


def test_unusable_or_repeated_column_names(store, tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("email,first name\nann@example.net,Ann\n", encoding="utf-8")
    refused(store, path, r"column name 'first name' is not usable as a merge field")
    path.write_text("email,name,name\nann@example.net,Ann,A\n", encoding="utf-8")
    refused(store, path, r"column 'name' appears twice")


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ({"text_body": "Dear {{ name }\n"}, r"body line 1: syntax error"),
        ({"text_body": "Dear {{ name }},\n\n{{ town }}\n"}, r"body line 3: unknown merge field 'town'"),
        ({"subject": "Hi {{ nam }}"}, r"subject line 1: unknown merge field 'nam'"),
        ({"html_body": "<p>\n{% for x in %}</p>"}, r"html line 2: syntax error"),
    ],
)
def test_template_problems(store, csv_file, template, match):
    refused(store, csv_file(recipients(2, city="Graz")), match, **template)


@pytest.mark.parametrize("brk", ["\r", "\n", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
@pytest.mark.parametrize("where", ["name", "sender", "subject"])
def test_line_breaks_in_header_values(store, csv_file, where, brk):
    values = {"name": "Autumn sale", "sender": SENDER, "subject": "Hello {{ name }}"}
    values[where] = values[where][:5] + brk + values[where][5:]
    what = {"name": "mailing name", "sender": "sender", "subject": "subject"}[where]
    refused(store, csv_file(recipients(2, city="Graz")), rf"{what} contains a line break", **values)


@pytest.mark.parametrize("brk", ["\r", "\n", "\u2028", "\x85"])
def test_line_break_in_a_merge_field_used_in_the_subject(store, csv_file, brk):
    rows = recipients(3, city="Graz")
    rows[1]["name"] = f"Bob{brk}Bcc: everyone@example.net"
    message = refused(store, csv_file(rows), r"line 3: column 'name' has a line break and is used in the subject")
    assert "Bcc" not in message


def test_line_break_in_a_merge_field_used_only_in_the_body_is_fine(store, csv_file):
    rows = recipients(2, city="Graz\nAustria")
    assert create(store, csv_file(rows)).recipients == 2


def test_invalid_sender_and_empty_name(store, csv_file):
    refused(store, csv_file(recipients(1, city="Graz")), r"sender 'news' is not a valid address", sender="news")
    refused(store, csv_file(recipients(1, city="Graz")), r"mailing name is empty", name="  ")


def test_missing_recipients_file(store, tmp_path):
    refused(store, tmp_path / "nope.csv", r"cannot read recipients file .*nope.csv")


def test_file_changing_during_the_import_is_refused(store, csv_file):
    """The file is validated, then read again to import: if it changed in between, nothing is imported."""
    path = csv_file(recipients(3000, city="Graz"))

    def progress(done: int, total: int) -> None:
        if done == 100:  # someone is still writing the file
            with path.open("a", encoding="utf-8") as f:
                f.write("not-an-address,Late,Graz\n")

    refused(store, path, r"changed while it was imported \(line 3002: invalid address 'not-an-address'\)",
            batch_size=100, progress=progress)


def test_the_address_column_name_is_case_insensitive(store, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Email,name,city\nann@example.net,Ann,Graz\n", encoding="utf-8")
    result = create(store, path)
    assert mailings.get_mailing(store, result.mailing_id).fields == ["name", "city"]
    path.write_text("email,EMAIL,name,city\nann@example.net,ann@example.net,Ann,Graz\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="column 'email' appears twice"):
        create(store, path)
