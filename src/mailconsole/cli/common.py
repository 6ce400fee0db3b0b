"""What every command shares: the store it opens, who acts, output, confirmation, errors."""

from __future__ import annotations

import argparse
import json
import math
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..store import Actor, Store, StoreError
from ..store.connection import to_url
from ..store.errors import InvalidInput, Refused
from ..textsafety import escape_terminal
from ..times import format_utc, parse_iso


class UsageError(Exception):
    """Wrong arguments: exit 2, like argparse."""


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich's own handling exits with 1 from inside a command; main() ends the
        # command and says the same for every command (see cli.main).
        self.quiet = True
        raise BrokenPipeError


@dataclass
class Context:
    args: argparse.Namespace
    out: Console = field(default_factory=lambda: _Console(highlight=False, soft_wrap=True))
    _store: Store | None = None

    @property
    def account(self) -> str:
        return getattr(self.args, "account", None) or "default"

    @property
    def db(self) -> str | None:
        return getattr(self.args, "db", None)

    @property
    def actor(self) -> Actor:
        return Actor.current()

    def store(self, *, create: bool = True) -> Store:
        if self._store is None:
            self._store = Store(self.db, create=create, read_only=getattr(self.args, "read_only", False))
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def print_json(self, data: Any) -> None:
        # Plain print: rich would wrap or colour what scripts parse.
        print(json.dumps(data, indent=2, sort_keys=True, default=str))

    def print(self, text: str) -> None:
        self.out.print(text)


def confirm(ctx: Context, question: str, yes: bool) -> None:
    """Ask on a terminal; refuse without one unless --yes was given."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused("not confirmed: no terminal to ask on; pass --yes to confirm")
    ctx.out.print(question + " [y/N] ", end="")
    try:
        answer = input()
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise Refused("not confirmed; nothing changed")


def when(ts: float | None) -> str:
    """A stored time in UTC; one outside what can be shown is named, never fatal to the listing."""
    return format_utc(ts)


def parse_time(text: str) -> float:
    """ISO 8601 within the range the program can show; a time without zone is taken as UTC."""
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise UsageError(f"--at {exc}") from None


def printable(text: object) -> str:
    """Data with its control and bidi characters shown as \\xNN / \\uNNNN, tab and newline kept."""
    return escape_terminal(text, keep="\t\n")


def one_line(text: object) -> str:
    """Data or an error message as one line: every control character shown, newlines too."""
    return escape_terminal(text)


def safe(text: object) -> str:
    """Data (names, reasons, subjects) as text: never read as Rich markup or as terminal control."""
    return escape(one_line(text))


def check_regular_file(path: str | Path, what: str, max_bytes: int) -> None:
    """Refuse (InvalidInput, one line) a file that cannot be what a command reads whole:
    missing, a directory, a device or pipe, unreadable, or larger than `max_bytes`."""
    p = Path(path)
    try:
        info = p.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InvalidInput(f"{what} {p} is a directory; give a file")
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{what} {p} is not a regular file (a device, pipe or socket); give a file")
        if info.st_size > max_bytes:
            raise InvalidInput(f"{what} {p} is {info.st_size:,} bytes; at most {max_bytes:,} are read")
        with p.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {p}: {exc.strerror or exc}") from None


# -- argument types -------------------------------------------------------------
# Each value an operator types is checked when the command line is parsed: a bad
# one is a usage error (exit 2) before anything is opened or changed.

MAX_ID = 2**63 - 1  # ids are SQLite INTEGERs: signed 64 bits
MAX_AGE_DAYS = 36_500.0  # a hundred years: past that the rule means "never suspend"


def text_value(value: str) -> str:
    """A required text (a name, a subject, an account): not empty, not only blanks."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _whole_number(value: str, out_of_range: str) -> int:
    """A whole number from 1 to MAX_ID; `out_of_range` says why another number is refused."""
    try:
        n = int(value.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{one_line(value)!r} is not a whole number") from None
    if not 1 <= n <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{n} is not {out_of_range}")
    return n


def record_id(value: str) -> int:
    """A mailing id: a whole number from 1 to 2**63-1."""
    return _whole_number(value, f"an id (ids are 1 to {MAX_ID})")


def positive_int(value: str) -> int:
    """A count of at least 1 (a limit)."""
    return _whole_number(value, "a positive count")


def bounded_number(value: str, unit: str, high: float) -> float:
    """A finite number of `unit` from 0 to `high`, or an argparse error saying so."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{one_line(value)!r} is not a number of {unit}") from None
    if not math.isfinite(number) or not 0 <= number <= high:
        raise argparse.ArgumentTypeError(f"{one_line(value)!r} is not a number of {unit} from 0 to {high:g}")
    return number


def days_value(value: str) -> float:
    """A number of days: finite, from 0 to MAX_AGE_DAYS."""
    return bounded_number(value, "days", MAX_AGE_DAYS)


def time_value(value: str) -> float:
    """An ISO 8601 time the program can show (see mailconsole.times)."""
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def store_value(value: str) -> str:
    """A store the program can open: checked for its form here, for its existence when opened."""
    try:
        to_url(value)
    except StoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


__all__ = [
    "Context", "UsageError", "StoreError", "confirm", "when", "parse_time", "printable", "one_line", "safe",
    "check_regular_file", "text_value", "record_id", "positive_int", "bounded_number", "days_value", "time_value", "store_value",
]
