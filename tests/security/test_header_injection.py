"""Header injection: no line break from any input ever becomes a new header.

Every character the `email` package reads as a line break is tried through
every way into a header: the mailing's name, sender (address and display
name), subject, List-Unsubscribe, the recipient address, and merge values used
in the subject or the body. Each is refused when the mailing is created or its
template saved, or that one message fails at build time; a message that is
built is parsed back and must carry exactly the expected headers.
"""

from __future__ import annotations

import pytest

from mailconsole.engine.message import MergeError
from mailconsole.store import InvalidInput, revisions

from .conftest import HEADERS, MALLORY, build, parse

BREAKS = ["\r", "\n", "\r\n", "\u2028", "\u2029", "\x85", "\v", "\f", "\x1c", "\x1d", "\x1e"]
INJECT = "Bcc: victim@example.org"


def injected(brk: str) -> str:
    return f"x{brk}{INJECT}"


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
@pytest.mark.parametrize("where", ["name", "sender", "sender_name", "subject", "list_unsubscribe"])
def test_refused_at_create(create, brk: str, where: str) -> None:  # type: ignore[no-untyped-def]
    value = {
        "name": {"name": injected(brk)},
        "sender": {"sender": f"news@shop.example{brk}{INJECT}"},
        "sender_name": {"sender": f'"Shop{brk}{INJECT}" <news@shop.example>'},
        "subject": {"subject": injected(brk)},
        "list_unsubscribe": {"list_unsubscribe": f"<mailto:u@shop.example>{brk}{INJECT}"},
    }[where]
    with pytest.raises(InvalidInput) as exc:
        create(**value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_recipient_address_refused_at_create(create, brk: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="line 2: invalid address"):
        create([{"email": f"a@example.net{brk}{INJECT}", "name": "A"}])


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_merge_value_in_the_subject_refused_at_create(create, brk: str) -> None:  # type: ignore[no-untyped-def]
    rows = [{"email": "a@example.net", "name": "A"}, {"email": "b@example.net", "name": injected(brk)}]
    with pytest.raises(InvalidInput, match="line 3: column 'name' has a line break and is used in the subject"):
        create(rows, subject="Hi {{ name }}")


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_subject_saved_later_with_a_broken_field_is_refused(store, create, brk: str) -> None:  # type: ignore[no-untyped-def]
    """The field was fine in the body; moving it into the subject must not reach a header."""
    mid = create([{"email": "a@example.net", "name": injected(brk)}], subject="Hi", text_body="{{ name }}")
    with pytest.raises(InvalidInput, match="merge field 'name', which has a line break"):
        revisions.save_revision(store, MALLORY, mid, subject="Hi {{ name }}")
    with pytest.raises(InvalidInput, match="subject contains a line break"):
        revisions.save_revision(store, MALLORY, mid, subject=injected(brk))


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_builder_fails_the_one_message(brk: str) -> None:
    """Whatever got past the store (or was stored before a check existed) fails at build time."""
    with pytest.raises(MergeError, match="line break"):
        build(subject="Hi {{ name }}", fields={"name": injected(brk)})
    with pytest.raises(MergeError, match="recipient address"):
        build(to=f"a@example.net{brk}{INJECT}")
    # The next recipient of the same revision is unaffected.
    assert parse(build(subject="Hi {{ name }}", fields={"name": "Ada"}))["Subject"] == "Hi Ada"


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
def test_line_breaks_in_the_body_stay_in_the_body(brk: str) -> None:
    data = build("Dear {{ name }}\n", subject="Hi", fields={"name": injected(brk)})
    msg = parse(data)
    assert list(msg.keys()) == HEADERS
    assert msg["Bcc"] is None


@pytest.mark.parametrize("value", [
    "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?=",  # an encoded word that decodes to "x\r\nBcc: …"
    "Ünïcödé " * 40,  # folded over several encoded words
    "x" * 5000,  # longer than a header line may be
    "a\tb\x00c\x7fd",  # other control characters
])
def test_header_values_that_need_encoding_add_no_header(value: str) -> None:
    msg = parse(build(subject="Hi {{ name }}", fields={"name": value}, list_unsubscribe="<mailto:u@shop.example>",
                      sender='"Shop: Ärger, \\"quoted\\"" <news@shop.example>'))
    assert list(msg.keys()) == HEADERS[:6] + ["List-Unsubscribe"] + HEADERS[6:]
    assert msg["Subject"] == "Hi " + value
    assert msg["Bcc"] is None
