"""The revision diff: only the parts that differ, as a unified diff."""

from __future__ import annotations

from mailconsole.console.diffing import Parts, diff_plain, diff_text, part_diffs


def test_only_changed_parts_appear_in_order() -> None:
    old = Parts("30% off", "Hello\n30% off today\nBye", "<b>30% off</b>")
    new = Parts("20% off", "Hello\n30% off today\nBye", "<b>20% off</b>")
    diffs = part_diffs(old, new, "revision 1", "revision 2")
    assert [title for title, _ in diffs] == ["Subject", "HTML body"]
    plain = diff_plain(old, new, "revision 1", "revision 2")
    assert "-<b>30% off</b>" in plain and "+<b>20% off</b>" in plain
    assert "--- revision 1 subject" in plain


def test_html_added_or_removed_is_named() -> None:
    plain = diff_plain(Parts("s", "t", None), Parts("s", "t", "<p>t</p>"), "revision 1", "revision 2")
    assert "revision 1 html (none)" in plain and "+<p>t</p>" in plain


def test_the_same_parts_say_so() -> None:
    text = diff_text(Parts("s", "t"), Parts("s", "t"), "revision 1", "your edit")
    assert "are the same" in text.plain


def test_control_characters_are_written_out() -> None:
    plain = diff_plain(Parts("s", "a"), Parts("s", "a\x1b[2J"), "r1", "r2")
    assert "\x1b" not in plain and "\\x1b" in plain
