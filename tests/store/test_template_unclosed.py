"""An unclosed block is named at its opening tag (Jinja reports the end of the template)."""

from __future__ import annotations

import pytest
from storehelp import ALICE

from mailconsole import templating
from mailconsole.store import InvalidInput, revisions

FIELDS = ["name", "vip"]


def problems(source: str, part: str = "body") -> list[str]:
    return [str(p) for p in templating.check(source, FIELDS, part)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Dear {{ name }},\n\n  {% if vip %}Thanks!\nBye\n",
         "body line 3, column 3: `{% if vip %}` is never closed (add {% endif %})"),
        ("Hi\n{% for i in [1, 2] %}{{ i }}\n\nend\n",
         "body line 2, column 1: `{% for i in [1, 2] %}` is never closed (add {% endfor %})"),
        # Nested: the inner block is closed, the outer one is not.
        ("{% if vip %}\n  {% if name %}x{% endif %}\n",
         "body line 1, column 1: `{% if vip %}` is never closed (add {% endif %})"),
        # Nested: the inner block is the one left open when the outer one ends.
        ("{% for i in [1] %}\n  x {% if vip %}y\n{% endfor %}\n",
         "body line 2, column 5: `{% if vip %}` is not closed before {% endfor %} on line 3 (add {% endif %} before it)"),
        # Windows line ends, whitespace control, a comment and a raw block before it: still the right spot.
        ("{# {% if %} #}\r\n{% raw %}{% for %}{% endraw %}\r\n\t{%- if name -%} hi\r\n",
         "body line 3, column 2: `{%- if name -%}` is never closed (add {% endif %})"),
        ("{% set note %}Dear {{ name }}", "body line 1, column 1: `{% set note %}` is never closed (add {% endset %})"),
    ],
)
def test_the_unclosed_opening_tag_is_named(source: str, expected: str) -> None:
    assert problems(source) == [expected]


def test_a_long_tag_is_quoted_short() -> None:
    [problem] = problems("{% if " + " and ".join(["vip"] * 30) + " %}x")
    assert problem.startswith("body line 1, column 1: `{% if vip and vip") and "… %}` is never closed" in problem
    assert len(problem) < 120


@pytest.mark.parametrize("source", [
    "{% if vip %}Thanks{% elif name %}Hi{% else %}Hello{% endif %}\n",
    "{% for i in [1, 2] %}{{ i }}{% else %}none{% endfor %}",
    "{% set n = name %}{% if vip %}{% if n %}{{ n }}{% endif %}{% endif %}",
    "{% raw %}{% if %}{% endraw %}{# {% for %} #}",
])
def test_a_correct_template_still_passes(source: str) -> None:
    assert problems(source) == []


def test_other_syntax_errors_keep_jinja_s_words() -> None:
    assert problems("{% if %}") == ["body line 1: syntax error: Expected an expression, got 'end of statement block'"]
    assert problems("x\n{% endif %}") == ["body line 2: syntax error: Encountered unknown tag 'endif'."]


def test_the_save_refuses_with_the_opening_tag(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(2)
    with pytest.raises(InvalidInput) as info:
        revisions.save_revision(store, ALICE, mid, html_body="<p>Dear {{ name }}</p>\n<p>\n{% if name %}<b>VIP</b>\n</p>\n")
    assert str(info.value) == ("template not saved: html line 3, column 1: `{% if name %}` is never closed "
                               "(add {% endif %})")
