"""What every command shares: the store it opens, who acts, output, confirmation, errors."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..store import Actor, Store, StoreError
from ..store.errors import Refused


class UsageError(Exception):
    """Wrong arguments: exit 2, like argparse."""


@dataclass
class Context:
    args: argparse.Namespace
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
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
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_time(text: str) -> float:
    """ISO 8601; a time without zone is taken as UTC."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO 8601 time (e.g. 2026-12-01T09:00:00+00:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


# Control characters other than tab and newline: ESC starts terminal sequences
# (clear the screen, retitle the window, fake a line), CR overwrites a line.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """Data with its control characters shown as \\xNN, so the terminal never acts on them."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def safe(text: object) -> str:
    """Data (names, reasons, subjects) as text: never read as Rich markup or as terminal control."""
    return escape(printable(text))


__all__ = ["Context", "UsageError", "StoreError", "confirm", "when", "parse_time", "printable", "safe"]
