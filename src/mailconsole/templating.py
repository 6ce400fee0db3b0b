"""Mail templates: one sandboxed Jinja environment for validation and rendering.

Shared by the store (which validates a revision before saving it) and the engine
(which renders it at send time), so both agree on what a template means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateAssertionError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

# Every character the `email` package treats as a line break in a header value.
LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")

# Names a template may use besides the recipient's merge fields.
BUILTIN_NAMES = frozenset({"email"})


def _env(html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
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
