"""A save is based on the revision the edit opened: a newer one saved meanwhile is never replaced silently."""

from __future__ import annotations

import pytest
from storehelp import ALICE

from mailconsole.store import Actor, Refused, audit, revisions
from mailconsole.store.revisions import RevisionConflict

BOB = Actor("bob", "192.0.2.8")


def test_a_save_based_on_an_older_revision_is_refused_with_the_newer_one(store, clock, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(3)
    clock.advance(30)
    bobs = revisions.save_revision(store, BOB, mid, subject="Bob's {{ name }}", based_on=1)
    with pytest.raises(RevisionConflict) as info:
        revisions.save_revision(store, ALICE, mid, subject="Alice's {{ name }}", based_on=1)
    assert isinstance(info.value, Refused)  # the CLI and the console show it like any refusal
    assert info.value.latest == bobs and info.value.based_on == 1
    assert info.value.latest.created_by == "bob" and info.value.latest.created_at == bobs.created_at
    assert [r.subject for r in revisions.all_revisions(store, mid)] == ["Hello {{ name }}", "Bob's {{ name }}"]


def test_saving_over_the_newer_revision_is_audited_as_overriding_it(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(3)
    revisions.save_revision(store, BOB, mid, subject="Bob's {{ name }}", based_on=1)
    mine = revisions.save_revision(store, ALICE, mid, subject="Alice's {{ name }}", based_on=1, overriding=2)
    assert (mine.number, mine.subject) == (3, "Alice's {{ name }}")
    details = audit.entries(store, limit=1)[0].details
    assert (details["revision"], details["previous"], details["based_on"], details["overrides"]) == (3, 2, 1, 2)


def test_overriding_a_revision_that_is_no_longer_the_newest_is_refused(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(3)
    revisions.save_revision(store, BOB, mid, subject="Bob's {{ name }}")
    carols = revisions.save_revision(store, Actor("carol", "192.0.2.9"), mid, subject="Carol's {{ name }}")
    with pytest.raises(RevisionConflict) as info:
        revisions.save_revision(store, ALICE, mid, subject="Alice's {{ name }}", based_on=1, overriding=2)
    assert info.value.latest == carols
    assert len(revisions.all_revisions(store, mid)) == 3


def test_a_save_based_on_the_newest_revision_goes_through(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(3)
    rev = revisions.save_revision(store, ALICE, mid, subject="Hi {{ name }}", based_on=1)
    assert rev.number == 2
    assert audit.entries(store, limit=1)[0].details["based_on"] == 1
    assert "overrides" not in audit.entries(store, limit=1)[0].details


def test_without_based_on_the_newest_revision_is_the_base(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    """`template set` gives no base: it corrects whatever is newest, as before."""
    mid = make_mailing(3)
    revisions.save_revision(store, BOB, mid, subject="Bob's {{ name }}")
    assert revisions.save_revision(store, ALICE, mid, text_body="Hi {{ name }}\n").subject == "Bob's {{ name }}"
