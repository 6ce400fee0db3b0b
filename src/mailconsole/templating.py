"""Mail templates: one sandboxed Jinja environment for validation and rendering.

Shared by the store (which validates a revision before saving it) and the engine
(which renders it at send time), so both agree on what a template means.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateAssertionError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

# Every character the `email` package treats as a line break in a header value.
LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")

# Names a template may use besides the recipient's merge fields.
BUILTIN_NAMES = frozenset({"email"})


# Bounds on what one render may build. The engine renders on its event loop, so a
# template that runs for minutes or allocates gigabytes would freeze every sender
# of that engine (and then of the next engine that claims the same message). The
# sandbox already blocks attribute escapes and ranges over 100,000; these bound the
# rest: numbers that size things, and the length of any string a render builds.
# 10 MB is the message size limit many relays set (Postfix's default is 10,240,000 bytes).
MAX_OUTPUT = 10_000_000  # characters: one rendered part, or one string built inside it
MAX_NUMBER = 100_000  # largest number used as a count, width or repetition
_DIGITS = re.compile(r"\d+")


def _too_big(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > MAX_NUMBER
    if isinstance(value, (tuple, list)):
        return any(_too_big(v) for v in value)
    return False


def _wide_format(fmt: Any) -> bool:
    """A format string with a width or precision over the limit ('%999999999s', '{:>999999999}')."""
    return isinstance(fmt, str) and any(int(d) > MAX_NUMBER for d in _DIGITS.findall(fmt))


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what} is too large for a mail template (limits: {MAX_NUMBER:,} for numbers, {MAX_OUTPUT:,} characters)")


def _sized(result: Any) -> Any:
    if isinstance(result, (str, list, tuple)) and len(result) > MAX_OUTPUT:
        raise _refuse("a value built by the template")
    return result


class MailSandbox(SandboxedEnvironment):
    """The Jinja sandbox with bounds on size: see MAX_OUTPUT and MAX_NUMBER."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # A lorem-ipsum generator has no place in a mail and takes a size argument.
        self.globals.pop("lipsum", None)
        # Filters are called directly by compiled templates, not through call().
        self.filters = {name: self._bounded(f) for name, f in self.filters.items()}

    @staticmethod
    def _bounded(filter_func: Any) -> Any:
        @functools.wraps(filter_func)  # keeps Jinja's pass_context/pass_environment marks
        def bounded(*args: Any, **kwargs: Any) -> Any:
            if _too_big(args) or _too_big(list(kwargs.values())):
                raise _refuse(f"an argument of the filter '{filter_func.__name__}'")
            if filter_func.__name__ == "do_format" and any(_wide_format(a) for a in args):
                raise _refuse("a width in a format string")
            return _sized(filter_func(*args, **kwargs))

        return bounded

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and (_too_big(left) or not isinstance(right, (int, float)) or abs(right) > 64):
            raise _refuse("a power")
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 4096:
                raise _refuse("a product")
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT:
                raise _refuse("a repetition")
        if operator == "%" and _wide_format(left):
            raise _refuse("a width in a format string")
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        if _too_big(args) or _too_big(list(kwargs.values())):
            raise _refuse("a call argument")
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
            # "x".replace("", y) inserts y between every character: estimate first.
            if len(owner) + owner.count(args[0]) * len(args[1]) > MAX_OUTPUT:
                raise _refuse("a replacement")
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        # Jinja wraps str.format when the attribute is read (so calls that bypass
        # call() are sandboxed too); the width check belongs at the same place.
        if getattr(value, "__name__", "") in ("format", "format_map") and _wide_format(getattr(value, "__self__", None)):
            raise _refuse("a width in a format string")
        return super().wrap_str_format(value)


def _env(html: bool) -> SandboxedEnvironment:
    return MailSandbox(
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        auto_reload=False,
    )


TEXT_ENV = _env(False)
HTML_ENV = _env(True)


def has_line_break(value: str) -> bool:
    return any(ch in LINE_BREAKS for ch in value)


_LOADING = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


@dataclass(frozen=True)
class TemplateProblem:
    part: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.part} line {self.line}: {self.message}"


def check(source: str, fields: Iterable[str], part: str, *, html: bool = False) -> list[TemplateProblem]:
    """Problems with a template part, each naming its line: syntax, unknown names."""
    env = HTML_ENV if html else TEXT_ENV
    try:
        tree = env.parse(source)
        # Parsing alone accepts unknown filters and tests ({{ x|nosuch }}): Jinja
        # finds those when it compiles, so compile too, or they fail at send time.
        env.compile(source)
    except TemplateAssertionError as exc:  # unknown filter or test
        return [TemplateProblem(part, exc.lineno or 1, f"{exc.message}")]
    except TemplateSyntaxError as exc:
        return [TemplateProblem(part, exc.lineno or 1, f"syntax error: {exc.message}")]
    for node in tree.find_all(_LOADING):
        # A mail template stands alone: there is no loader, so these fail at send time.
        return [TemplateProblem(part, node.lineno, "templates cannot include, import or extend other templates")]
    for node in tree.find_all((nodes.Macro, nodes.CallBlock)):
        # A macro can call itself twice per call: exponential work no size bound catches.
        return [TemplateProblem(part, node.lineno, "templates cannot define macros")]
    for loop in tree.find_all(nodes.For):
        # One loop is bounded (a range by 100,000, a string by its length); loops
        # inside loops multiply, and a recursive loop has no bound at all.
        if loop.recursive or next(loop.find_all(nodes.For), None) is not None:
            return [TemplateProblem(part, loop.lineno, "loops cannot be nested or recursive in a mail template")]
    known = set(fields) | BUILTIN_NAMES
    unknown = meta.find_undeclared_variables(tree) - known
    problems = []
    for name in sorted(unknown):
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), 1)
        problems.append(TemplateProblem(part, line, f"unknown merge field '{name}' (known: {', '.join(sorted(known))})"))
    return problems


def names_used(source: str) -> set[str]:
    """Merge fields a template reads (empty for a template that does not parse)."""
    try:
        return set(meta.find_undeclared_variables(TEXT_ENV.parse(source)))
    except TemplateSyntaxError:
        return set()


def compile_text(source: str):  # type: ignore[no-untyped-def]
    return TEXT_ENV.from_string(source)


def compile_html(source: str):  # type: ignore[no-untyped-def]
    return HTML_ENV.from_string(source)
