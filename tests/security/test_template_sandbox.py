"""Known Jinja sandbox escapes: refused when the template is saved, or that one message fails.

Each attempt must either be refused by `revisions.validate` (which both
`create_mailing` and `save_revision` call) with one line naming the problem, or
pass validation and then fail in the engine's builder with a MergeError (the
engine records that message as failed) without anything of Python's insides in
a built message. Nothing may be sent that contains what the attempt reached for.
"""

from __future__ import annotations

import time

import pytest

from mailconsole.engine.message import MergeError
from mailconsole.store import InvalidInput, revisions

from .conftest import build

FIELDS = ["name"]

# Attempts that can only fail at render time: the names are known, the sandbox refuses the access.
AT_RENDER = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ name.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ ''|attr('__class__') }}",
    "{{ (name|attr('__class__')).__subclasses__() }}",
    "{{ range.__globals__ }}",
    # CVE-2024-56326: str.format reaching attributes through a format field.
    "{{ '{0.__class__.__mro__}'.format(name) }}",
    "{{ '{x.__class__}'.format_map({'x': name}) }}",
    # CVE-2025-27516: the same through |attr('format'), which bypassed the format check.
    "{{ ('{0.__class__.__init__.__globals__}'|attr('format'))(name) }}",
    "{% set f = '{0.__class__}'|attr('format') %}{{ f(name) }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ dict.__subclasses__() }}",
    # Resource exhaustion: each is bounded by the sandbox (see templating.MAX_OUTPUT, MAX_NUMBER).
    "{{ 'a' * 10**9 }}",
    "{{ name * 100000000 }}",
    "{{ 10 ** 10 ** 10 }}",
    "{% set ns = namespace(x=3) %}{% for i in range(1000) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(100000) %}{{ name.ljust(100000) }}{% endfor %}",
    "{{ name.ljust(1000000000) }}",
    "{{ name|center(1000000000) }}",
    "{{ name|indent(1000000000) }}",
    "{{ name|wordwrap(1000000000) }}",
    "{{ '%999999999s'|format(name) }}",
    "{{ '%999999999s' % name }}",
    "{{ '{:>999999999}'.format(name) }}",
    "{{ ('x' * 200).replace('', 'y' * 100000) }}",
    # The render budget (templating.Budget): time, and characters built, whatever builds them.
    "{% for i in range(100000) %}{{ range(100000)|list|length }}{% endfor %}",  # the reported loop bomb
    "{% set ns = namespace(s=name) %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{% set ns = namespace(s=name) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    "{% set ns = namespace(s=name) %}{% for i in range(64) %}{% set ns.s %}{{ ns.s }}{{ ns.s }}{% endset %}{% endfor %}",
    "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{{ ns.l.extend([name * 1000] * 100) }}{% endfor %}{{ ns.l }}",
    "{% set s = name * 9000000 %}{{ s ~ s }}",
    "{% set s = name * 9000000 %}{{ s }}{{ s }}",
    "{% set a = name * 9000000 %}{% set b = a[1:] %}{% set c = b[1:] %}{% set d = c[1:] %}{{ d|length }}",
    "{% set l = [name * 100000] * 100000 %}{{ l|join }}",
    "{% set l = [] %}{% for i in range(100000) %}{{ l.append(name * 100000) }}{% endfor %}{{ l }}",
    "{% set l = [] %}{% for i in range(100000) %}{{ l.append(l) }}{% endfor %}{{ l }}",
    "{{ ('{0}' * 5000).format(name * 100000) }}",
    "{{ ('%(a)s' * 5000)|format(a=name * 100000) }}",
    "{{ ('x\\t' * 100000).expandtabs(1000) }}",
    "{{ (name * 1000000)|replace('N', name * 1000) }}",
    "{{ ('x\\n' * 1000000)|indent(name * 100) }}",
    "{{ range(100000)|batch(1)|sum(start=[]) }}",
    "{{ ((name ~ ' ') * 1000000)|wordwrap(5) }}",
    "{{ ((name ~ ' ') * 1000000)|urlize }}",
    "{{ (name * 1000000)|list|groupby('x') }}",
    "{{ (name * 1000000)|select|list }}",
]

# Attempts refused at save: loading other templates, names that are no merge field, unbounded structures.
AT_SAVE = {
    "{{ request }}": "unknown merge field 'request'",
    "{{ config.items() }}": "unknown merge field 'config'",
    "{{ lipsum.__globals__ }}": "unknown merge field 'lipsum'",
    "{{ lipsum(10**7) }}": "unknown merge field 'lipsum'",
    "{{ os.system('id') }}": "unknown merge field 'os'",
    "{% include '/etc/passwd' %}": "cannot include, import or extend",
    "{% import 'os' as os %}": "cannot include, import or extend",
    "{% from 'os' import system %}": "cannot include, import or extend",
    "{% extends '/etc/passwd' %}": "cannot include, import or extend",
    "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}": "cannot define macros",
    "{% call range(3) %}x{% endcall %}": "cannot define macros",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}": "cannot be nested",
    "{% for c in name recursive %}{{ loop([c]) }}{% endfor %}": "cannot be nested or recursive",
    "{{ name|nosuchfilter }}": "No filter named 'nosuchfilter'",
    # Jinja defers unknown filters and tests inside {% if %} to the render: every message would fail.
    "{% if name is nosuchtest %}x{% endif %}": "No test named 'nosuchtest'",
    "{% if name %}{{ name|nosuchfilter }}{% endif %}": "No filter named 'nosuchfilter'",
}

LEAKS = (b"<class", b"<function", b"<module", b"__", b"subclasses", b"/bin/", b"Traceback")


@pytest.mark.parametrize("source", AT_SAVE)
@pytest.mark.parametrize("part", ["subject", "text", "html"])
def test_refused_when_saved(source: str, part: str) -> None:
    parts = {"subject": "Hi", "text": "x", "html": None} | {part: source}
    with pytest.raises(InvalidInput) as exc:
        revisions.validate(parts["subject"], parts["text"], parts["html"], FIELDS)
    message = str(exc.value)
    assert AT_SAVE[source] in message and "\n" not in message


@pytest.mark.parametrize("source", AT_RENDER)
@pytest.mark.parametrize("part", ["subject", "text", "html"])
def test_fails_at_render_and_leaks_nothing(source: str, part: str) -> None:
    revisions.validate("Hi" if part != "subject" else source, source if part == "text" else "x",
                       source if part == "html" else None, FIELDS)  # passes: only rendering shows the attempt
    parts = {"subject": "Hi", "text": "x", "html": None} | {part: source}
    started = time.monotonic()
    with pytest.raises(MergeError) as exc:
        build(parts["text"], subject=parts["subject"], html=parts["html"], fields={"name": "N"})
    # Bounded: refused before any gigabyte is built (at most the 10 MB bound is).
    assert time.monotonic() - started < 2.0
    reason = str(exc.value)
    assert "\n" not in reason and len(reason) < 400
    assert any(word in reason for word in ("SecurityError", "UndefinedError", "over 10,000,000", "OverflowError",
                                           "too large", "render budget"))


def test_the_output_bound_covers_the_whole_message() -> None:
    """10,000,000 characters for all parts together: two parts of 6,000,000 are over it."""
    with pytest.raises(MergeError) as exc:
        build("{{ name * 6000000 }}", html="{{ name * 6000000 }}", fields={"name": "N"})
    assert "output over 10,000,000 characters (html, for a@example.net); not sent" in str(exc.value)
    assert exc.value.kind == "template"


def test_constant_text_in_a_loop_is_charged_too() -> None:
    """A loop writing a large constant into a {% set %} block: joining it would be 10 GB in one call."""
    source = "{% set x %}{% for i in range(100000) %}" + "y" * 100_000 + "{% endfor %}{% endset %}{{ x|length }}"
    started = time.monotonic()
    with pytest.raises(MergeError) as exc:
        build(source)
    assert time.monotonic() - started < 2.0
    assert "render budget: more than 30,000,000 characters built" in str(exc.value)


def test_the_render_budget_is_the_same_for_every_option() -> None:
    """No operator option raises the bounds: they are constants of the template module."""
    from mailconsole import templating
    from mailconsole.engine import config

    assert (templating.MAX_OUTPUT, templating.RENDER_SECONDS) == (10_000_000, 0.25)
    names = {f.name for f in config.EngineConfig.__dataclass_fields__.values()}
    assert not {n for n in names if "render" in n or "output" in n or "template" in n}


def test_the_loop_bomb_is_refused_when_saved(store, create) -> None:  # type: ignore[no-untyped-def]
    bomb = "{% for i in range(100000) %}{{ range(100000)|list|length }}{% endfor %}"
    mid = create()
    started = time.monotonic()
    with pytest.raises(InvalidInput) as exc:
        revisions.save_revision(store, _actor(), mid, text_body=bomb)
    assert time.monotonic() - started < 5.0
    assert str(exc.value) == (
        "template not saved: body line 1: template over its render budget: more than 250 ms "
        "(for recipient a@example.net); it would fail at send time"
    )
    assert revisions.newest_revision(store, mid).number == 1
    with pytest.raises(InvalidInput, match="template over its render budget: more than 250 ms"):
        create(text_body=bomb)
    assert [m.id for m in __import__("mailconsole.store.mailings", fromlist=["x"]).list_mailings(store)] == [mid]


def test_render_errors_name_no_python_internals() -> None:
    """The reason is stored as last_error and shown to operators: no object reprs, no globals."""
    with pytest.raises(MergeError) as exc:
        build("{{ cycler.__init__.__globals__.os }}")
    assert not any(leak.decode() in str(exc.value) for leak in (b"<module", b"<function", b"Traceback"))


def test_ordinary_templates_still_render() -> None:
    """The bounds stop abuse, not normal use of the template language."""
    source = (
        "{{ name|upper }} {{ '%05d' % 42 }} {{ 2 ** 10 }} {{ '{:>8}'.format(name) }} {{ name * 3 }}\n"
        "{% for c in name %}[{{ loop.index }}{{ c }}]{% endfor %} {{ range(5)|join(',') }}\n"
        "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}\n"
        "{{ name|center(20) }}|{{ name|truncate(9) }}|{{ 'a-b'.replace('-', '+') }}\n"
    )
    revisions.validate("Hi {{ name }}", source, None, FIELDS)
    body = build(source, fields={"name": "Ada"}).split(b"\r\n\r\n", 1)[1]
    assert body.startswith(b"ADA 00042 1024      Ada AdaAdaAda\r\n[1A][2d][3a] 0,1,2,3,4\r\n3\r\n")
    assert not any(leak in body for leak in LEAKS)


@pytest.mark.parametrize("value", ["{{ 7*7 }}", "{% include '/etc/passwd' %}", "{{ cycler.__init__.__globals__ }}"])
def test_merge_values_are_data_never_templates(value: str) -> None:
    """A recipient's value that looks like a template is printed as it is, not evaluated."""
    body = build("Hello {{ name }}", subject="Hi {{ name }}", fields={"name": value})
    assert value.encode() in body and b"49" not in body.split(b"\r\n\r\n", 1)[1]


def test_save_revision_refuses_with_one_line(store, create) -> None:  # type: ignore[no-untyped-def]
    mid = create()
    for source in ("{% include '/etc/passwd' %}", "{% for a in name %}{% for b in name %}{% endfor %}{% endfor %}"):
        with pytest.raises(InvalidInput) as exc:
            revisions.save_revision(store, _actor(), mid, text_body=source)
        assert "\n" not in str(exc.value) and "template not saved" in str(exc.value)
    assert revisions.newest_revision(store, mid).number == 1


def test_create_refuses_before_anything_is_stored(store, create) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.store import mailings

    with pytest.raises(InvalidInput):
        create(text_body="{% import 'os' as os %}")
    assert mailings.list_mailings(store, planned=True) == []


def _actor():  # type: ignore[no-untyped-def]
    from .conftest import MALLORY

    return MALLORY
