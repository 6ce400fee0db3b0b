"""Mail templates: one sandboxed Jinja environment for validation and rendering.

Shared by the store (which validates a revision, and renders it for a sample of
the real recipients, before saving it) and the engine (which renders it at send
time), so both agree on what a template means and what it may cost.

The render budget
-----------------
Each message is rendered under a `Budget`: a deadline (RENDER_SECONDS for all of
its parts together) and bounds on characters (MAX_OUTPUT for everything the
message says, across subject, text and HTML; MAX_BUILT for everything its
templates build, intermediate values included). Compiled templates check it
themselves: the code generator below makes every loop iteration, every `~`, every
printed value and every filter, call and arithmetic operator the sandbox
intercepts ask the budget first, so a template cannot run long or build big
between two checks. No option raises these bounds.

Why in-process and not a subprocess per render: a message is built in about
13 µs; handing it to another process (or even a thread) costs more than the
whole build, for every message, to guard against templates that the save-time
check (a render for a sample of the real recipients, with this same budget)
already refuses. What one bounded render can still cost, about RENDER_SECONDS
of the engine's loop, its heartbeat and stop acknowledgement absorb.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateAssertionError, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

# Every character the `email` package treats as a line break in a header value.
LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")

# Names a template may use besides the recipient's merge fields.
BUILTIN_NAMES = frozenset({"email"})

# Bounds on what one render may build. The engine renders on its event loop, so a
# template that runs for minutes or allocates gigabytes would freeze every sender
# of that engine (and then of the next engine that claims the same message).
# 10 MB is the message size limit many relays set (Postfix's default is 10,240,000 bytes).
MAX_OUTPUT = 10_000_000  # characters: one message (all parts), or any one value built inside it
MAX_NUMBER = 100_000  # largest number used as a count, width or repetition; items in one value
MAX_BUILT = 3 * MAX_OUTPUT  # characters one message's templates may build in all (memory)
MAX_FORMAT_FIELDS = 10_000  # fields in one format string (each is Python-level work)
RENDER_SECONDS = 0.25  # wall time one message's render may take, all parts together
_DIGITS = re.compile(r"\d+")
# Filters that do Python-level work per character or item of their input, in one
# call the budget cannot interrupt: their input is bounded so that one call stays
# within a few tens of milliseconds (measured: wordwrap, urlize and groupby take
# 0.3–0.5 s on 100,000 characters).
SLOW_FILTER_INPUT = 10_000
_SLOW_FILTERS = frozenset({"wordwrap", "urlize", "groupby", "sort", "unique", "title", "pprint", "striptags", "dictsort"})
# Filters that never turn their input's items into text: only its length is checked,
# not every item (a walk of 100,000 items per call would be most of their cost).
_OPAQUE_FILTERS = frozenset({"length", "count", "first", "last", "list", "reverse", "random", "batch", "slice",
                             "select", "reject", "selectattr", "rejectattr", "sort", "unique", "min", "max"})
# Filters that walk their input item by item: a string is as many items as characters.
_ITEM_FILTERS = frozenset({"batch", "slice", "map", "select", "reject", "selectattr", "rejectattr", "sum", "min", "max",
                           "first", "last", "random"})


class OverBudget(SecurityError):
    """A render went over its budget; the message says which bound, in an operator's words."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Budget:
    """What one message's render may still spend: see the module docstring."""

    __slots__ = ("deadline", "seconds", "output", "built")

    def __init__(self, seconds: float = RENDER_SECONDS) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.output = 0
        self.built = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise OverBudget(f"template over its render budget: more than {self.seconds * 1000:.0f} ms", timed_out=True)

    def add_built(self, n: int) -> None:
        self.built += n
        if self.built > MAX_BUILT:
            raise OverBudget(f"template over its render budget: more than {MAX_BUILT:,} characters built")
        self.tick()

    def add_output(self, n: int) -> None:
        self.output += n
        if self.output > MAX_OUTPUT:
            raise OverBudget(f"output over {MAX_OUTPUT:,} characters")


# The budget of the render running on this thread. Renders are synchronous (no
# await inside), so one slot per thread is exact; the sandbox's hooks find it here
# because Jinja passes them no per-render state of ours.
_active = threading.local()


class _NoBudget(Budget):
    """Outside render_parts (Jinja folding constants while it compiles): the size bounds
    of each value still hold, but nothing accumulates from one template to the next."""

    def tick(self) -> None:
        pass

    def add_built(self, n: int) -> None:
        self.built = 0

    def add_output(self, n: int) -> None:
        pass


_NO_BUDGET = _NoBudget(float("inf"))


def _budget() -> Budget:
    return getattr(_active, "budget", None) or _NO_BUDGET


# -- sizes of values ----------------------------------------------------------

_CONTAINERS = (list, tuple, dict, set, frozenset)


def _weight(value: Any) -> int:
    """About how many characters `value` takes as text; a bounded walk.

    Strings count their length; containers their items, walked to at most
    MAX_NUMBER items, so a list of 100,000 references to one 10 MB string (cheap
    to make, a terabyte to print) is seen for what it is before anything prints it.
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Namespace):
        value = value._Namespace__attrs  # type: ignore[attr-defined]
    if not isinstance(value, _CONTAINERS):
        return 1
    total = 0
    items = 0
    stack = [value]
    while stack:
        v = stack.pop()
        items += 1
        if items > MAX_NUMBER + 1:
            raise _refuse(f"a value with more than {MAX_NUMBER:,} items")
        if isinstance(v, str):
            # A string's repr may escape each character (\x00 is four): count non-ASCII ones high.
            total += len(v) + 2 if v.isascii() else 10 * len(v)
        elif isinstance(v, dict):
            total += 2
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, _CONTAINERS):
            total += 2
            stack.extend(v)
        elif isinstance(v, Namespace):
            stack.append(v._Namespace__attrs)  # type: ignore[attr-defined]
        else:
            total += 2
        if total > MAX_OUTPUT:
            break
    return total


def _check_values(values: Iterable[Any], what: str) -> int:
    """Refuse any value over the bounds; returns their total weight."""
    total = 0
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int):
            if abs(v) > MAX_NUMBER:
                raise _refuse(what)
            continue
        w = _weight(v)
        if w > MAX_OUTPUT:
            raise _refuse(what)
        total += w
    return total


def _wide_format(fmt: Any) -> bool:
    """A format string with a width or precision over the limit ('%999999999s', '{:>999999999}')."""
    return isinstance(fmt, str) and any(int(d) > MAX_NUMBER for d in _DIGITS.findall(fmt))


def _check_format(fmt: Any, args_weight: int, marker: str) -> None:
    """A format string's result is at most its length plus each field filled with every argument."""
    if not isinstance(fmt, str):
        return
    if _wide_format(fmt):
        raise _refuse("a width in a format string")
    fields = fmt.count(marker)
    if fields > MAX_FORMAT_FIELDS:
        raise _refuse(f"a format string with more than {MAX_FORMAT_FIELDS:,} fields")
    if len(fmt) + fields * args_weight > MAX_OUTPUT:
        raise _refuse("a formatted string")


def _check_replace(owner: Any, old: Any, new: Any) -> None:
    # "x".replace("", y) inserts y between every character: estimate first.
    if isinstance(owner, str) and isinstance(old, str) and isinstance(new, str):
        if len(owner) + (owner.count(old) if old else len(owner) + 1) * len(new) > MAX_OUTPUT:
            raise _refuse("a replacement")


def _check_per_line(owner: Any, piece: Any) -> None:
    """Filters that add `piece` to every line (indent) or tab (expandtabs)."""
    if isinstance(owner, str):
        n = len(piece) if isinstance(piece, str) else piece if isinstance(piece, int) else 0
        if len(owner) + (owner.count("\n") + owner.count("\t") + 1) * n > MAX_OUTPUT:
            raise _refuse("an indentation")


def _refuse(what: str) -> SecurityError:
    return SecurityError(
        f"{what} is too large for a mail template (limits: {MAX_NUMBER:,} for numbers and items, "
        f"{MAX_OUTPUT:,} characters)"
    )


def _sized(result: Any) -> Any:
    """Refuse a result over the bounds, and charge it to the render's budget."""
    if isinstance(result, str):
        if len(result) > MAX_OUTPUT:
            raise _refuse("a value built by the template")
        _budget().add_built(len(result))
    elif isinstance(result, _CONTAINERS):
        if len(result) > MAX_NUMBER:
            raise _refuse("a value built by the template")
        _budget().add_built(len(result))
    return result


# -- the compiled code's checks ------------------------------------------------


class BudgetedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with the budget's checks written into the template's code.

    Loop bodies tick the deadline each iteration; `~` checks its parts before
    joining them (Jinja joins them with no hook the sandbox sees); each printed
    value is weighed before it is turned into text and charged after. The rest
    goes through the sandbox's hooks (filters, calls, operators).
    """

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        if frame.loop_frame:
            self.writeline("environment.mail_tick()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.mail_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        # Constant text written to a buffer ({% set x %}…{% endset %}, a filter
        # block) is charged too: a loop can put a large constant there many times,
        # and joining the buffer would build all of it in one call.
        self._buffered = frame.buffer is not None
        try:
            super().visit_Output(node, frame)
        finally:
            self._buffered = False

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        text = super()._output_const_repr(group)
        return f"environment.mail_out(str, {text})" if getattr(self, "_buffered", False) else text

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        # A slice copies (s[1:] of a 10 MB string is 10 MB more): charged like any value built.
        if isinstance(node.arg, nodes.Slice):
            self.write("environment.mail_sized(")
            super().visit_Getitem(node, frame)
            self.write(")")
        else:
            super().visit_Getitem(node, frame)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        assert finalize.src is None, "the mail environments set no finalize"
        if frame.eval_ctx.volatile:
            convert = "(escape if context.eval_ctx.autoescape else str)"
        elif frame.eval_ctx.autoescape:
            convert = "escape"
        else:
            convert = "str"
        self.write(f"environment.mail_out({convert}, ")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write(")")


class MailSandbox(SandboxedEnvironment):
    """The Jinja sandbox with a render budget: see the module docstring."""

    code_generator_class = BudgetedCodeGenerator
    # "+" too: "ns.s + ns.s" doubles a string as surely as "*" repeats it.
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # A lorem-ipsum generator has no place in a mail and takes a size argument.
        self.globals.pop("lipsum", None)
        # Filters are called directly by compiled templates, not through call().
        self.filters = {name: self._bounded(name, f) for name, f in self.filters.items()}
        # Tests too are called directly; select('odd') calls one per item.
        self.tests = {name: self._ticking(f) for name, f in self.tests.items()}

    # Called by the generated code (BudgetedCodeGenerator).

    def mail_tick(self) -> None:
        _budget().tick()

    def mail_sized(self, value: Any) -> Any:
        return _sized(value)

    def mail_concat(self, join: Any, parts: tuple) -> str:
        budget = _budget()
        budget.tick()
        if _check_values(parts, "a joined string (~)") > MAX_OUTPUT:
            raise _refuse("a joined string (~)")
        result = join(parts)
        budget.add_built(len(result))
        return result

    def mail_out(self, convert: Any, value: Any) -> str:
        # The hot path (every printed value of every message): inlined checks.
        if not isinstance(value, str) and _weight(value) > MAX_OUTPUT:
            raise _refuse("a printed value")
        text = convert(value)
        budget = getattr(_active, "budget", None) or _NO_BUDGET
        budget.built += len(text)
        if budget.built > MAX_BUILT or time.monotonic() > budget.deadline:
            budget.add_built(0)  # raises, in the budget's words
        return text

    # The sandbox's hooks.

    @staticmethod
    def _bounded(name: str, filter_func: Any) -> Any:
        @functools.wraps(filter_func)  # keeps Jinja's pass_context/pass_environment marks
        def bounded(*args: Any, **kwargs: Any) -> Any:
            _budget().tick()
            values = [a for a in args if not _is_jinja_state(a)]
            if name in _OPAQUE_FILTERS and values and isinstance(values[0], _CONTAINERS):
                if len(values[0]) > MAX_NUMBER:
                    raise _refuse(f"the input of the filter '{name}'")
                weight = _check_values(values[1:], f"an argument of the filter '{name}'")
            else:
                weight = _check_values(values, f"an argument of the filter '{name}'")
            weight += _check_values(kwargs.values(), f"an argument of the filter '{name}'")
            first = values[0] if values else None
            size = len(first) if isinstance(first, (str, *_CONTAINERS)) else 0
            if name in _SLOW_FILTERS and size > SLOW_FILTER_INPUT:
                raise SecurityError(f"the filter '{name}' takes at most {SLOW_FILTER_INPUT:,} characters or items in a mail template")
            if name in _ITEM_FILTERS and size > MAX_NUMBER:
                raise _refuse(f"the input of the filter '{name}'")
            if name == "format" and values:
                _check_format(values[0], weight, "%")
            elif name == "replace" and len(values) >= 3:
                _check_replace(values[0], values[1], values[2])
            elif name == "indent" and values:
                _check_per_line(values[0], values[1] if len(values) > 1 else kwargs.get("width", 4))
            elif name == "sum" and not isinstance(kwargs.get("start", values[2] if len(values) > 2 else 0), (int, float)):
                # sum(start=[]) over many lists copies quadratically, in one C call.
                raise SecurityError("the filter 'sum' adds numbers only in a mail template")
            return _sized(filter_func(*args, **kwargs))

        return bounded

    @staticmethod
    def _ticking(test_func: Any) -> Any:
        @functools.wraps(test_func)
        def ticking(*args: Any, **kwargs: Any) -> Any:
            _budget().tick()
            return test_func(*args, **kwargs)

        return ticking

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _budget().tick()
        if operator == "**":
            big_base = isinstance(left, int) and not isinstance(left, bool) and abs(left) > MAX_NUMBER
            if big_base or not isinstance(right, (int, float)) or abs(right) > 64:
                raise _refuse("a power")
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 4096:
                raise _refuse("a product")
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and not isinstance(n, bool):
                limit = MAX_OUTPUT if isinstance(seq, str) else MAX_NUMBER
                if len(seq) * n > limit or _weight(seq) * n > MAX_OUTPUT:
                    raise _refuse("a repetition")
        if operator == "+":
            if not isinstance(left, (int, float)) and _weight(left) + _weight(right) > MAX_OUTPUT:
                raise _refuse("a joined value (+)")
        if operator == "%":
            _check_format(left, _check_values((right,), "a format argument"), "%")
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        _budget().tick()
        weight = _check_values(args, "a call argument") + _check_values(kwargs.values(), "a call argument")
        target = getattr(__obj, "__wrapped__", __obj)  # str.format arrives wrapped by the sandbox
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        if isinstance(owner, str):
            if name == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
            elif name in ("format", "format_map"):
                _check_format(owner, weight, "{")
            elif name == "expandtabs":
                _check_per_line(owner, args[0] if args else kwargs.get("tabsize", 8))
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        # Jinja wraps str.format when the attribute is read (so calls that bypass
        # call() are sandboxed too); the width check belongs at the same place.
        if getattr(value, "__name__", "") in ("format", "format_map") and _wide_format(getattr(value, "__self__", None)):
            raise _refuse("a width in a format string")
        return super().wrap_str_format(value)


def _is_jinja_state(value: Any) -> bool:
    """The context or environment Jinja passes to some filters: not the template's data."""
    return isinstance(value, (SandboxedEnvironment,)) or type(value).__name__ in ("Context", "EvalContext")


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


# -- rendering -----------------------------------------------------------------


class Renderer:
    """Renders one compiled template, per message, with less overhead than Template.render.

    Template.render merges the template's globals (a ChainMap, iterated in
    Python) into every new context; flattening them once saves about a third of
    a small template's render time. The output is the same.
    """

    def __init__(self, template: Template) -> None:
        self.template = template
        self._globals = dict(template.globals)
        self._concat = template.environment.concat

    def render(self, values: dict, budget: Budget) -> str:
        t = self.template
        ctx = new_context(t.environment, t.name, t.blocks, values, False, self._globals)
        chunks = []
        size = budget.output
        # Counted as it is produced: a loop that writes without end is stopped at
        # the bound instead of filling memory.
        for chunk in t.root_render_func(ctx):  # type: ignore[attr-defined]
            size += len(chunk)
            if size > MAX_OUTPUT:
                budget.add_output(size - budget.output)  # raises
            chunks.append(chunk)
        budget.output = size
        return self._concat(chunks)  # type: ignore[no-any-return]


class PartFailed(Exception):
    """One part of a message could not be rendered: which part, the template line, why."""

    def __init__(self, part: str, line: int | None, error: Exception) -> None:
        super().__init__(f"{part}{f' line {line}' if line else ''}: {describe(error)}")
        self.part = part
        self.line = line
        self.error = error


def describe(error: Exception) -> str:
    """An error as one line an operator can read: the budget's own words, else class and text."""
    if isinstance(error, OverBudget):
        return str(error)
    text = " ".join(str(error).split())[:300]
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__


def _template_line(template: Template, tb: TracebackType | None) -> int | None:
    """The template line an error was raised on, from the compiled code's frames."""
    line = None
    code_file = template.root_render_func.__code__.co_filename  # type: ignore[attr-defined]
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == code_file:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def render_parts(parts: Sequence[tuple[str, Renderer | None]], values: dict, seconds: float = RENDER_SECONDS) -> list[str | None]:
    """Render a message's parts (name, renderer or None) under one Budget; PartFailed names the part."""
    budget = Budget(seconds)
    previous = getattr(_active, "budget", None)
    _active.budget = budget
    try:
        out: list[str | None] = []
        for name, renderer in parts:
            if renderer is None:
                out.append(None)
                continue
            try:
                out.append(renderer.render(values, budget))
            except Exception as exc:  # undefined field, sandbox refusal, budget, or an error in an expression
                raise PartFailed(name, _template_line(renderer.template, exc.__traceback__), exc) from None
        return out
    finally:
        _active.budget = previous


# -- checks before saving ------------------------------------------------------

_LOADING = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)

@dataclass(frozen=True)
class TemplateProblem:
    part: str
    line: int
    message: str
    column: int | None = None  # given where it helps find the spot (an unclosed tag)

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{self.part} {where}: {self.message}"


# Tags that open a block needing its own end tag; `set` only in its block form
# ({% set x %}…{% endset %}, no `=`).
_BLOCK_TAGS = frozenset({"if", "for", "with", "filter", "macro", "call", "block", "autoescape", "trans", "set"})
_NEWLINE = re.compile(r"\r\n|\r|\n")
_SHOWN_TAG = 40  # characters of an opening tag quoted in a problem


@dataclass(frozen=True)
class _OpenTag:
    name: str
    line: int
    column: int
    text: str  # the whole tag as written, `{% if ... %}`


def _open_tags(source: str, env: SandboxedEnvironment) -> tuple[list[_OpenTag], tuple[str, int] | None]:
    """The blocks still open where the tags stop matching: at the end, or at the first end tag that
    closes something else (the end tag's name and line). Walks the lexer's tokens, which already
    skip comments and {% raw %}; columns come from finding each token in the source in turn."""
    text = _NEWLINE.sub("\n", source)  # the lexer's view of line ends (its line numbers count these)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    stack: list[_OpenTag] = []
    pos = 0
    tokens = list(env.lex(source))
    for i, (lineno, kind, value) in enumerate(tokens):
        found = text.find(value, pos)
        start = found if found >= 0 else pos
        pos = start + len(value)
        if kind != "block_begin":
            continue
        inner = []
        for _, k, v in tokens[i + 1:]:
            if k == "block_end":
                break
            if k != "whitespace":
                inner.append((k, v))
        if not inner or inner[0][0] != "name":
            continue
        name = inner[0][1]
        if name in _BLOCK_TAGS and not (name == "set" and ("operator", "=") in inner):
            end = text.find("%}", start)
            tag = " ".join(text[start:end + 2 if end >= 0 else len(text)].split())
            if len(tag) > _SHOWN_TAG:
                tag = tag[:_SHOWN_TAG - 4] + " … %}"
            column = start - line_starts[lineno - 1] + 1
            stack.append(_OpenTag(name, lineno, column, tag))
        elif name.startswith("end") and stack:
            if stack[-1].name != name[3:]:
                return stack, (name, lineno)
            stack.pop()
    return stack, None


def _unclosed_problem(source: str, env: SandboxedEnvironment, part: str) -> TemplateProblem | None:
    """An unclosed block named at its opening tag: Jinja reports it where the template ends
    (or at the next end tag), which is rarely where the operator must add the end tag."""
    try:
        stack, mismatch = _open_tags(source, env)
    except TemplateSyntaxError:
        return None
    if not stack:
        return None
    tag = stack[-1]
    if mismatch is None:
        message = f"`{tag.text}` is never closed (add {{% end{tag.name} %}})"
    else:
        message = (f"`{tag.text}` is not closed before {{% {mismatch[0]} %}} on line {mismatch[1]} "
                   f"(add {{% end{tag.name} %}} before it)")
    return TemplateProblem(part, tag.line, message, tag.column)


# Jinja parses and compiles at about 100 µs a tag: a 7 MB body of 190,000 `{{ name }}`
# took 90 s to validate, and would take as long again in each engine that compiles
# it. Constant text costs nothing; tags and the code inside them are bounded.
MAX_TAGS = 2_000
MAX_CODE = 50_000  # characters inside all tags together
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def size_problem(source: str, part: str) -> TemplateProblem | None:
    """A template part too big to compile in reasonable time (a C-speed scan, before any parsing)."""
    if "{{" not in source and "{%" not in source:
        return None
    tags = 0
    code = 0
    for m in _TAG.finditer(source):
        tags += 1
        code += m.end() - m.start()
        if tags > MAX_TAGS or code > MAX_CODE:
            line = source.count("\n", 0, m.start()) + 1
            what = f"more than {MAX_TAGS:,} tags" if tags > MAX_TAGS else f"more than {MAX_CODE:,} characters of tags"
            return TemplateProblem(part, line, f"{what} ({{{{ }}}} and {{% %}}); a mail template may have no more")
    return None


def check(source: str, fields: Iterable[str], part: str, *, html: bool = False) -> list[TemplateProblem]:
    """Problems with a template part, each naming its line: syntax, unknown names."""
    env = HTML_ENV if html else TEXT_ENV
    too_big = size_problem(source, part)
    if too_big is not None:
        return [too_big]
    try:
        tree = env.parse(source)
        # Parsing alone accepts unknown filters and tests ({{ x|nosuch }}): Jinja
        # finds those when it compiles, so compile too, or they fail at send time.
        env.compile(source)
    except TemplateAssertionError as exc:  # unknown filter or test
        return [TemplateProblem(part, exc.lineno or 1, f"{exc.message}")]
    except TemplateSyntaxError as exc:
        message = exc.message or ""
        if message.startswith(("Unexpected end of template", "Encountered unknown tag 'end")):
            unclosed = _unclosed_problem(source, env, part)
            if unclosed is not None:
                return [unclosed]
        return [TemplateProblem(part, exc.lineno or 1, f"syntax error: {message}")]
    except RecursionError:  # an expression nested thousands deep: Jinja's compiler recurses
        return [TemplateProblem(part, 1, "an expression is nested too deeply for a mail template")]
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
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        # Compiling lets an unknown filter or test inside {% if %} through (Jinja
        # defers it to the render), so `{% if x is nosuchtest %}` would fail every message.
        registry, kind = (env.filters, "filter") if isinstance(node, nodes.Filter) else (env.tests, "test")
        if node.name not in registry:
            return [TemplateProblem(part, node.lineno, f"No {kind} named '{node.name}'.")]
    known = set(fields) | BUILTIN_NAMES
    unknown = meta.find_undeclared_variables(tree) - known
    problems = []
    if unknown:
        lines: dict[str, int] = {}
        for n in tree.find_all(nodes.Name):  # one walk, not one per unknown name
            if n.name in unknown:
                lines.setdefault(n.name, n.lineno)
        for name in sorted(unknown):
            problems.append(TemplateProblem(part, lines.get(name, 1), f"unknown merge field '{name}' (known: {', '.join(sorted(known))})"))
    return problems


def names_used(source: str) -> set[str]:
    """Merge fields a template reads (empty for a template that does not parse)."""
    try:
        return set(meta.find_undeclared_variables(TEXT_ENV.parse(source)))
    except TemplateSyntaxError:
        return set()


def compile_text(source: str) -> Template:
    return TEXT_ENV.from_string(source)


def compile_html(source: str) -> Template:
    return HTML_ENV.from_string(source)


def compile_parts(subject: str, text: str, html: str | None) -> list[tuple[str, Renderer | None]]:
    """A message's parts, compiled, in the order render_parts renders them."""
    return [
        ("subject", Renderer(compile_text(subject))),
        ("body", Renderer(compile_text(text))),
        ("html", Renderer(compile_html(html)) if html else None),
    ]
