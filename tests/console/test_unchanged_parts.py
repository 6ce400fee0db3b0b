"""What an edit left unchanged, and what the unchanged parts still say that the edit removed."""

from __future__ import annotations

from mailconsole.console.diffing import Parts
from mailconsole.console.unchanged_parts import StillSays, in_sentence, removed_phrases, unchanged_parts

OLD = Parts("Sale: 30% off", "Everything is 30% off.\nBye\n", "<p>Bye</p>\n<b>30%\noff</b>\n")


def test_the_html_still_saying_what_the_subject_lost_is_quoted() -> None:
    [html] = unchanged_parts(OLD, Parts("Sale: 20% off", "Everything is 20% off.\nBye\n", OLD.html))
    assert html.part == "html" and html.title == "HTML body"
    # Found across a line end and a tag: the phrase, its line, that line.
    assert html.still_says == (StillSays("30%", 2, "<b>30%"),)


def test_every_unchanged_part_is_named_even_with_nothing_to_quote() -> None:
    parts = unchanged_parts(OLD, Parts("Sale for you", OLD.text, OLD.html))
    assert [(p.part, [s.phrase for s in p.still_says]) for p in parts] == [("text", ["30% off"]), ("html", ["30% off"])]
    assert [p.part for p in unchanged_parts(OLD, Parts("Sale: 30% off!", OLD.text, OLD.html))] == ["text", "html"]


def test_no_part_unchanged_or_nothing_changed_asks_nothing() -> None:
    assert unchanged_parts(OLD, OLD) == []
    assert unchanged_parts(OLD, Parts("a", "b", "c")) == []
    # A mailing without HTML has no HTML part to leave behind.
    assert unchanged_parts(Parts("s", "t"), Parts("s2", "t2")) == []


def test_removed_phrases_skip_short_words_and_words_kept_elsewhere() -> None:
    assert removed_phrases("the big sale ends Friday at 5", "the sale ends Monday at 6") == ["big", "Friday", "5"]
    assert removed_phrases("a sale", "the sale") == []
    assert removed_phrases("sale ends Friday", "Friday: sale ends") == []  # moved, not removed


def test_titles_in_a_sentence_keep_acronyms() -> None:
    assert in_sentence(["Subject", "HTML body"]) == "subject, HTML body"
