"""Parser and dispatch. Exit codes: 0 done, 1 refused or failed, 2 usage error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..store import StoreError
from . import console_cmd, control_cmds, demo_cmd, mailing_cmds, migrate_cmd, serve_cmd
from .common import Context, UsageError, printable

COMMAND_MODULES = (control_cmds, mailing_cmds, serve_cmd, demo_cmd, console_cmd, migrate_cmd)


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On subcommands the defaults are suppressed so that `--db` given before the
    # command is not overwritten by the subcommand's own default.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--db", default=default, metavar="URL",
                        help="store: a file path or an SQLAlchemy URL (default: $MAILCONSOLE_DB, else the user data dir)")
    parser.add_argument("--account", default=argparse.SUPPRESS if suppress else "default", metavar="NAME",
                        help="account to act on (default: default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailconsole",
        description="Operate a bulk e-mail sender: stop a wrong mailing before it reaches everyone.",
    )
    parser.add_argument("--version", action="version", version=f"mailconsole {__version__}")
    _global_options(parser, suppress=False)
    console_cmd.add_console_options(parser)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub, common)
    parser.set_defaults(handler=console_cmd.run_console)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Context(args)
    try:
        return int(args.handler(ctx) or 0)
    except UsageError as exc:
        print(f"mailconsole: usage error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"mailconsole: error: {printable(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mailconsole: interrupted", file=sys.stderr)
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
