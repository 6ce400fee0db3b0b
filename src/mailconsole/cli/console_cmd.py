"""`mailconsole` with no command: the full-screen console (see mailconsole.console)."""

from __future__ import annotations

import argparse

from .common import Context


def add_console_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    default = argparse.SUPPRESS if suppress else False
    parser.add_argument("--no-engine", action="store_true", default=default,
                        help="never start an engine inside the console")
    parser.add_argument("--read-only", action="store_true", default=default,
                        help="observe only: every action is refused")
    parser.add_argument("--transport", default=argparse.SUPPRESS if suppress else None, metavar="URL",
                        help="transport of the engine started inside the console when none runs "
                             "(default: $MAILCONSOLE_TRANSPORT; without one no engine is started)")
    from .ops_options import add_notify

    add_notify(parser, suppress=suppress)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("console", parents=[common], help="open the console (the same as no command)")
    add_console_options(p, suppress=True)
    p.set_defaults(handler=run_console)


def run_console(ctx: Context) -> int:
    from ..console.launch import launch

    return launch(ctx)
