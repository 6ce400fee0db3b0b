"""The fast MIME builder against what email.message.EmailMessage produces."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailconsole.engine.message import CompiledRevision, MergeError, RevisionData, encode_body, encode_header
from mailconsole.engine.smtp import dot_stuff

from .conftest import parse

NOW = 1_800_000_000.0


def reference(rev: RevisionData, mailing_id: int, message_id: int, to: str, fields: dict, domain: str) -> EmailMessage:
    """The same message built the slow, obviously correct way."""
    from jinja2.sandbox import SandboxedEnvironment

    ctx = {**fields, "email": to}
    env = SandboxedEnvironment(keep_trailing_newline=True)
    msg = EmailMessage()
    msg["From"] = rev.sender
    msg["To"] = to
    msg["Subject"] = env.from_string(rev.subject).render(ctx)
    msg["Date"] = email.utils.formatdate(NOW, usegmt=True)
    msg["Message-ID"] = f"<m{message_id}.{mailing_id}@{domain}>"
    if rev.list_unsubscribe:
        msg["List-Unsubscribe"] = rev.list_unsubscribe
    msg.set_content(env.from_string(rev.text).render(ctx))
    if rev.html:
        html_env = SandboxedEnvironment(keep_trailing_newline=True, autoescape=True)
        msg.add_alternative(html_env.from_string(rev.html).render(ctx), subtype="html")
    return parse(msg.as_bytes(policy=email.policy.SMTP))


def assert_same(ours: EmailMessage, ref: EmailMessage) -> None:
    for h in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Unsubscribe"):
        assert ours[h] == ref[h], h
    assert ours.get_content_type() == ref.get_content_type()
    ours_parts = list(ours.walk()) if ours.is_multipart() else [ours]
    ref_parts = list(ref.walk()) if ref.is_multipart() else [ref]
    assert [p.get_content_type() for p in ours_parts] == [p.get_content_type() for p in ref_parts]
    for a, b in zip(ours_parts, ref_parts):
        if not a.is_multipart():
            assert a.get_content() == b.get_content()
            assert a.get_content_charset() == b.get_content_charset()


CASES = [
    RevisionData(1, "Hello {{ name }}", "Dear {{ name }},\ncode {{ code }}\n", None, "news@shop.example", None),
    RevisionData(2, "Grüße, {{ name }} – 50 % Rabatt! 🎉", "Liebe(r) {{ name }},\nÄÖÜ ß\n.leading dot\n..two\n", "<p>Hallo {{ name }} &amp; co</p>\n",
                 "Shop Ärger <news@shop.example>", "<mailto:unsub@shop.example>"),
    RevisionData(3, "Long lines {{ name }}", "x" * 3000 + "\n" + "trailing space   \nend", None, "news@shop.example", None),
    RevisionData(4, "{{ name }}" * 40, "text {{ code }}", "<b>{{ name }}</b> <script>{{ code }}</script>", "news@shop.example", None),
]


@pytest.mark.parametrize("rev", CASES, ids=lambda r: f"rev{r.id}")
@pytest.mark.parametrize("fields", [{"name": "Jo", "code": "A1"}, {"name": "Jörg <&> \"quoted\"", "code": "ünï"}])
def test_matches_emailmessage(rev, fields):
    built = CompiledRevision(7, rev).build(42, "rcpt@example.net", fields, now=NOW)
    assert built.data.endswith(b"\r\n")
    assert b"\n" not in built.data.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 998 for line in built.data.split(b"\r\n"))
    assert built.data.isascii()  # headers RFC 2047, bodies 7bit or quoted-printable
    assert_same(parse(built.data), reference(rev, 7, 42, "rcpt@example.net", fields, "shop.example"))


def test_literal_encoded_word_text_survives():
    # EmailMessage would let a receiver decode this text; we encode it so it reads as typed.
    rev = RevisionData(1, "=?utf-8?q?literal?= {{ name }}", "x", None, "news@shop.example", None)
    msg = parse(CompiledRevision(7, rev).build(1, "a@example.net", {"name": "Jo"}).data)
    assert msg["Subject"] == "=?utf-8?q?literal?= Jo"


def test_message_id_is_stable_per_message():
    c = CompiledRevision(7, CASES[0])
    a = parse(c.build(42, "a@example.net", {"name": "A", "code": "1"}).data)
    b = parse(c.build(42, "a@example.net", {"name": "A", "code": "1"}).data)
    assert a["Message-ID"] == b["Message-ID"] == "<m42.7@shop.example>"


@pytest.mark.parametrize("bad", ["Eve\r\nBcc: victim@example.net", "Eve\nX", "Eve\u2028X", "Eve\x85"])
def test_line_break_in_a_merged_header_fails_that_message(bad):
    c = CompiledRevision(7, CASES[0])
    with pytest.raises(MergeError, match="line break"):
        c.build(1, "a@example.net", {"name": bad, "code": "1"})
    c.build(2, "b@example.net", {"name": "fine", "code": "1"})  # the next one still builds


def test_missing_merge_field_and_bad_address_fail_clearly():
    c = CompiledRevision(7, CASES[0])
    with pytest.raises(MergeError, match="cannot be rendered"):
        c.build(1, "a@example.net", {"name": "x"})  # no code
    broken = CompiledRevision(7, RevisionData(1, "{{ 1 / n }}", "{{ name.__class__ }}", None, "news@shop.example", None))
    with pytest.raises(MergeError, match="ZeroDivisionError"):
        broken.build(1, "a@example.net", {"n": 0, "name": "x"})
    with pytest.raises(MergeError, match="SecurityError|UndefinedError"):
        broken.build(1, "a@example.net", {"n": 1, "name": "x"})
    with pytest.raises(MergeError, match="recipient address"):
        c.build(1, "jörg@example.net", {"name": "x", "code": "1"})


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"), max_size=300))
def test_any_subject_round_trips(subject):
    msg = parse(f"Subject: {encode_header(subject)}\r\n\r\nx\r\n".encode("ascii"))
    # Whitespace at either end of a header value is not significant (RFC 5322 folding):
    # a reader strips the leading part and may keep the trailing one. Everything between is kept.
    assert str(msg["Subject"]).strip() == subject.strip()


def test_dot_stuffing():
    assert dot_stuff(b".a\r\nb\r\n.\r\n..c\r\n") == b"..a\r\nb\r\n..\r\n...c\r\n"


@pytest.mark.parametrize("length, cte", [(998, "7bit"), (999, "quoted-printable")])
def test_a_line_over_998_bytes_is_quoted_printable(length, cte):  # type: ignore[no-untyped-def]
    """RFC 5322 2.1.1: at most 998 characters a line; a longer one must be encoded."""
    for text in ("x" * length, "short\n" + "x" * length + "\nend", "a\n" * 600 + "x" * length):
        got, body = encode_body(text)
        assert got == cte
        assert all(len(line) <= 998 for line in body.split(b"\r\n"))


# -- the render budget ------------------------------------------------------------------

# Slow only where n is large: one recipient's value makes the loop go over the budget.
PER_RECIPIENT_LOOP = "{% for i in range(n|int) %}{{ range(100000)|list|length }}{% endfor %}ok"


def _revision(text: str, html: str | None = None) -> CompiledRevision:
    return CompiledRevision(1, RevisionData(1, "Hi", text, html, "news@shop.example", None))


class TickClock:
    """The budget's clock, moved on by one step each time the budget reads it: what a
    render spends is then a count of its checks, the same on a busy machine as on a
    calm one (wall-clock budgets in a test fail whenever the machine is loaded)."""

    def __init__(self, step: float = 0.001) -> None:
        self.now = 0.0
        self.step = step

    def monotonic(self) -> float:
        self.now += self.step
        return self.now

    def spent(self, fn, *args):  # type: ignore[no-untyped-def]
        """(what fn returned or raised, the clock's time it took)."""
        started = self.now
        try:
            result = fn(*args)
        except Exception as exc:
            return exc, self.now - started
        return result, self.now - started


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> TickClock:
    from mailconsole import templating

    tick = TickClock()
    monkeypatch.setattr(templating, "time", tick)
    return tick


def test_a_message_over_its_time_budget_fails_alone_with_the_reason(clock: TickClock) -> None:
    rev = _revision(PER_RECIPIENT_LOOP)
    assert b"ok" in rev.build(1, "a@example.net", {"n": "1"}, now=NOW).data
    error, took = clock.spent(rev.build, 2, "b@example.net", {"n": "100000"}, NOW)
    assert isinstance(error, MergeError)
    assert 0.25 <= took < 0.26  # stopped at the first check past the budget, not at the loop's end
    assert str(error) == "template over its render budget: more than 250 ms (body, for b@example.net); not sent"
    assert error.kind == "template"
    assert b"ok" in rev.build(3, "c@example.net", {"n": "2"}, now=NOW).data  # the next one is unaffected


def test_the_budget_interrupts_a_render_on_the_real_clock() -> None:
    """The same on the wall clock: the loop would run for minutes; the budget ends it."""
    import time

    rev = _revision(PER_RECIPIENT_LOOP)
    started = time.monotonic()
    with pytest.raises(MergeError) as exc:
        rev.build(2, "b@example.net", {"n": "100000"}, now=NOW)
    assert 0.25 <= time.monotonic() - started < 10.0
    assert "more than 250 ms" in str(exc.value)


def test_the_budget_is_for_all_parts_together(clock: TickClock) -> None:
    """Each part alone is within the budget; both together are not: the second part fails."""
    from mailconsole import templating

    part = "{% for i in range(40) %}{{ range(100000)|list|length }}{% endfor %}"
    parts = templating.compile_parts("Hi", part, part)
    _, alone = clock.spent(templating.render_parts, parts[:2], {})
    budget = alone * 1.6
    assert templating.render_parts(parts[:2], {}, seconds=budget)[1]  # the text part alone fits
    assert templating.render_parts([parts[0], parts[2]], {}, seconds=budget)[1]  # so does the html part
    with pytest.raises(templating.PartFailed) as exc:
        templating.render_parts(parts, {}, seconds=budget)
    assert isinstance(exc.value.error, templating.OverBudget)
    assert exc.value.part == "html"


def test_a_revision_slow_for_everyone_soon_stops_taking_the_engines_time(clock: TickClock) -> None:
    """After 3 messages over 250 ms the rest get 10 ms; after 20 in a row they fail unrendered."""
    from mailconsole.engine import message

    rev = _revision(PER_RECIPIENT_LOOP)
    durations = []
    reasons = []
    for i in range(message.GIVE_UP + 2):
        error, took = clock.spent(rev.build, i, f"u{i}@example.net", {"n": "100000"}, NOW)
        assert isinstance(error, MergeError) and error.kind == "template"
        durations.append(took)
        reasons.append(str(error))
    assert all(0.25 <= d < 0.26 for d in durations[:3])
    assert all(0.01 <= d < 0.02 for d in durations[3:message.GIVE_UP])
    assert "more than 10 ms (reduced: this revision went over 250 ms for 3 messages)" in reasons[3]
    assert reasons[-1].startswith("template over its render budget: not rendered, this revision went over it for 20")
    assert durations[-1] == 0  # not rendered at all
    # A recipient it renders for in time resets the run, and a corrected revision starts afresh.
    assert b"ok" in _revision(PER_RECIPIENT_LOOP).build(99, "z@example.net", {"n": "0"}, now=NOW).data


def test_a_revision_that_cannot_compile_fails_its_messages_not_the_engine() -> None:
    """An older release may have saved what today's checks refuse."""
    for text, reason in (("{{ name ", "template cannot be compiled: TemplateSyntaxError"),
                         ("{{ name }}" * 3000, "template cannot be used: body line 1: more than 2,000 tags")):
        rev = _revision(text)
        with pytest.raises(MergeError) as exc:
            rev.build(1, "a@example.net", {"name": "A"}, now=NOW)
        assert str(exc.value).startswith(reason) and exc.value.kind == "template"


def test_a_bad_address_is_an_address_failure() -> None:
    with pytest.raises(MergeError) as exc:
        _revision("x").build(1, "bü@example.net", {}, now=NOW)
    assert exc.value.kind == "address"
