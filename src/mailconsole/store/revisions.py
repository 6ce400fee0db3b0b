"""Template revisions: checked before saving, the newest one is used at send time.

Checked twice: the text alone (syntax, names, size), then rendered for a sample
of the real recipients with the engine's render budget.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, or_, select

from .. import templating
from . import audit
from .actor import Actor
from .connection import Store
from .errors import InvalidInput, Refused
from .mailings import get_live
from .schema import mailings, messages, revisions, state_is


@dataclass(frozen=True)
class Revision:
    id: int
    mailing_id: int
    number: int
    subject: str
    text_body: str
    html_body: str | None
    created_at: float
    created_by: str
    sent: int


class RevisionConflict(Refused):
    """A save based on an older revision than the newest: someone saved meanwhile.

    `latest` is the newer revision (who saved it, when, what it says), so the
    operator can see what differs and choose; `based_on` is the one the edit started from.
    """

    def __init__(self, latest: Revision, based_on: int | None) -> None:
        super().__init__(
            f"template changed meanwhile (revision {latest.number} saved by {latest.created_by}); reload and retry"
        )
        self.latest = latest
        self.based_on = based_on


def _revision(row) -> Revision:  # type: ignore[no-untyped-def]
    return Revision(
        row.id, row.mailing_id, row.number, row.subject, row.text_body, row.html_body,
        row.created_at, row.created_by, row.sent,
    )


# Control characters other than tab and line ends (a body may have CR LF).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# RFC 5322's line limit: a longer subject template is a mistake (a body pasted
# into the subject field), not a subject.
MAX_SUBJECT = 998


def validate(subject: str, text_body: str, html_body: str | None, fields: list[str]) -> None:
    """Raise InvalidInput naming every problem (part, line, name); returns if all is well."""
    if templating.has_line_break(subject):
        raise InvalidInput("subject contains a line break; a subject must be one line")
    if not subject.strip():
        raise InvalidInput("subject is empty; give the mailing a subject")
    if len(subject) > MAX_SUBJECT:
        raise InvalidInput(f"subject is {len(subject):,} characters; the limit is {MAX_SUBJECT} (one header line)")
    for part, source in (("subject", subject), ("body", text_body), ("html", html_body or "")):
        control = _CONTROL.search(source)
        if control:
            line = source.count("\n", 0, control.start()) + 1
            raise InvalidInput(
                f"template not saved: {part} line {line} has the control character \\x{ord(control.group()):02x} "
                "(terminal escapes and other control codes have no place in a mail)"
            )
    problems = templating.check(subject, fields, "subject")
    problems += templating.check(text_body, fields, "body")
    if html_body is not None:
        problems += templating.check(html_body, fields, "html", html=True)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(f"template not saved: {problems[0]}{more}")


def newest(conn: Connection, mailing_id: int) -> Revision | None:
    row = conn.execute(
        select(revisions).where(revisions.c.mailing_id == mailing_id).order_by(revisions.c.number.desc()).limit(1)
    ).first()
    return _revision(row) if row else None


def newest_revision(store: Store, mailing_id: int) -> Revision | None:
    with store.read() as conn:
        return newest(conn, mailing_id)


def all_revisions(store: Store, mailing_id: int) -> list[Revision]:
    with store.read() as conn:
        rows = conn.execute(
            select(revisions).where(revisions.c.mailing_id == mailing_id).order_by(revisions.c.number)
        ).all()
    return [_revision(r) for r in rows]


def add(conn: Connection, mailing_id: int, subject: str, text_body: str, html_body: str | None, at: float, by: str) -> Revision:
    prev = newest(conn, mailing_id)
    number = prev.number + 1 if prev else 1
    rid = conn.execute(
        insert(revisions).values(
            mailing_id=mailing_id, number=number, subject=subject, text_body=text_body,
            html_body=html_body, created_at=at, created_by=by, sent=0,
        )
    ).inserted_primary_key[0]
    return Revision(rid, mailing_id, number, subject, text_body, html_body, at, by, 0)


# Each line-break character as it can appear in the stored merge fields: escaped
# by json.dumps (the default, ASCII) or raw (JSON written with ensure_ascii=False).
_ESCAPED_BREAKS = tuple(json.dumps(ch)[1:-1] for ch in sorted(templating.LINE_BREAKS)) + tuple(
    sorted(templating.LINE_BREAKS)
)


def _check_subject_fields(conn: Connection, mailing_id: int, subject: str, old_subject: str, fields: list[str]) -> None:
    """Refuse a subject that newly uses a merge field holding a line break for some unsent recipient.

    The import only checked the fields the first subject used; a field that was
    fine in the body (an address over two lines) must not move into a header.
    """
    new = sorted((templating.names_used(subject) - templating.names_used(old_subject)) & set(fields))
    if not new:
        return
    # One read per partial index that holds these states (schema.state_is).
    rows = [
        row for states in (("queued", "suspended"), ("claimed",)) for row in conn.execute(
            select(messages.c.email, messages.c.fields).where(
                messages.c.mailing_id == mailing_id,
                state_is(*states),
                or_(*[messages.c.fields.contains(esc, autoescape=True) for esc in _ESCAPED_BREAKS]),
            )
        )
    ]
    hits: dict[str, list[str]] = {name: [] for name in new}
    for email, data in rows:
        values = json.loads(data)
        for name in new:
            if templating.has_line_break(str(values.get(name, ""))):
                hits[name].append(email)
    for name, emails in hits.items():
        if emails:
            raise InvalidInput(
                f"template not saved: subject uses merge field '{name}', which has a line break for "
                f"{len(emails)} recipient(s) (first: {emails[0]}); a subject must be one line"
            )


# The save-time sample: the first recipients and a random few more of those not yet
# sent. A template that fails for every message fails for the first one; one that
# fails for a kind of recipient (an empty field, an odd value) is likely in the sample.
SAMPLE_FIRST = 20
SAMPLE_RANDOM = 100
_UNSENT = ("queued", "claimed", "suspended", "failed")  # failed: a correction is meant for them too


def sample_recipients(conn: Connection, mailing_id: int, *, first: int = SAMPLE_FIRST, more: int = SAMPLE_RANDOM,
                      rng: random.Random | None = None) -> list[tuple[str, dict]]:
    """(email, merge fields) of a sample of a mailing's unsent messages: a few indexed reads."""
    # The id range, one read per partial index holding some of these states (schema.state_is).
    ends = [
        conn.execute(select(func.min(messages.c.id), func.max(messages.c.id))
                     .where(messages.c.mailing_id == mailing_id, state_is(*states))).one()
        for states in (tuple(s for s in _UNSENT if s != "claimed"), ("claimed",))
    ]
    found = [e for e in ends if e[0] is not None]
    if not found:
        return []
    low, high = min(e[0] for e in found), max(e[1] for e in found)
    # Walks the table in id order from a point: "+ 0" and "|| ''" keep SQLite from
    # choosing the claim index instead (it would sort every unsent row for each read).
    pick = (
        select(messages.c.id, messages.c.email, messages.c.fields)
        .where((messages.c.mailing_id + 0) == mailing_id, (messages.c.state + "").in_(_UNSENT))
        .order_by(messages.c.id)
    )
    rows = {r.id: r for r in conn.execute(pick.where(messages.c.id >= low).limit(first))}
    if high - low + 1 > len(rows):
        rng = rng or random.Random()
        # Random points in the id range, each the next unsent message from there:
        # one short read each, however big the mailing.
        for _ in range(more):
            r = conn.execute(pick.where(messages.c.id >= rng.randint(low, high)).limit(1)).first()
            if r is not None:
                rows[r.id] = r
    return [(r.email, json.loads(r.fields)) for r in rows.values()]


def check_sample(subject: str, text_body: str, html_body: str | None, sample: Iterable[tuple[str, dict]]) -> None:
    """Render the template for each sampled recipient with the engine's budget; refuse at the first error.

    An error here (a division by zero, an unknown test, an undefined value, a
    render over its budget) would fail that recipient's message at send time,
    and usually every message: it is refused before it is saved.
    """
    parts = templating.compile_parts(subject, text_body, html_body)
    for email, fields in sample:
        try:
            templating.render_parts(parts, {**fields, "email": email})
        except templating.PartFailed as exc:
            raise InvalidInput(f"template not saved: {exc} (for recipient {email}); it would fail at send time") from None


def save_revision(
    store: Store,
    actor: Actor,
    mailing_id: int,
    *,
    subject: str | None = None,
    text_body: str | None = None,
    html_body: str | None = None,
    account: str = "default",
    based_on: int | None = None,
    overriding: int | None = None,
) -> Revision:
    """Validate, then store a new revision; parts not given are kept from the newest one.

    Every message not yet sent is rendered from this revision from now on.

    `based_on` is the revision number the edit started from: if a newer one was
    saved since, RevisionConflict says which, and nothing is saved. An operator
    who has seen that newer revision and saves over it anyway passes its number
    as `overriding` (checked the same way, and audited as overriding it).
    html_body "" removes the HTML part.

    The work (validating, rendering for a sample of the recipients) happens
    between a read and a short write: a big template must never hold the write
    lock, which the stop needs. The write re-checks that the revision validated
    against is still the newest, and refuses if another save came in between.
    """
    with store.read() as conn:
        m = get_live(conn, mailing_id, account)
        current = newest(conn, mailing_id)
        assert current is not None, "every mailing is created with a first revision"
        expected = overriding if overriding is not None else based_on
        if expected is not None and current.number != expected:
            raise RevisionConflict(current, based_on)
        fields = json.loads(m.fields)
        subject = current.subject if subject is None else subject
        text_body = current.text_body if text_body is None else text_body
        html_body = current.html_body if html_body is None else (html_body or None)
        if (subject, text_body, html_body) == (current.subject, current.text_body, current.html_body):
            return current
        if not templating.has_line_break(subject):
            _check_subject_fields(conn, mailing_id, subject, current.subject, fields)
        sample = sample_recipients(conn, mailing_id)
    validate(subject, text_body, html_body, fields)
    check_sample(subject, text_body, html_body, sample)
    with store.write() as conn:
        m = get_live(conn, mailing_id, account)
        latest = newest(conn, mailing_id)
        assert latest is not None
        if latest.id != current.id:
            raise RevisionConflict(latest, based_on)
        rev = add(conn, mailing_id, subject, text_body, html_body, store.now(), actor.user)
        # Which revision the edit was made on, and which newer one it knowingly replaced.
        edit: dict[str, int] = {}
        if based_on is not None:
            edit["based_on"] = based_on
        if overriding is not None:
            edit["overrides"] = overriding
        audit.record(
            conn, rev.created_at, actor, account, "template", mailing_id,
            revision=rev.number, previous=current.number, subject=subject,
            queued_at_save=m.queued + m.claimed, **edit,
        )
        return rev


__all__ = [
    "Revision", "RevisionConflict", "validate", "newest", "newest_revision", "all_revisions", "add", "save_revision",
    "sample_recipients", "check_sample",
]
