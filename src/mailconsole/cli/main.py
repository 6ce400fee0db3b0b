"""Parser and dispatch. Exit codes: 0 done, 1 refused or failed, 2 usage error,
130 interrupted, 141 output pipe closed (as a shell reports a SIGPIPE death).

No traceback reaches an operator: every error is one line on stderr. An
unexpected one is named as an internal error; MAILCONSOLE_DEBUG=1 shows its
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import IO, NoReturn

from .. import __version__
from ..store import StoreError
from ..store.connection import SUPPORTED_STORES
from . import (
    accounts_cmd, console_cmd, control_cmds, db_cmd, demo_cmd, list_id_cmd, mailing_cmds, migrate_cmd, recipients_cmd,
    relay_agent_cmd, serve_cmd, suppress_cmd,
)
from . import policy_cmd
from .common import Context, UsageError, one_line, store_value, text_value

COMMAND_MODULES = (
    control_cmds, mailing_cmds, recipients_cmd, serve_cmd, demo_cmd, console_cmd, migrate_cmd, list_id_cmd, suppress_cmd,
    accounts_cmd, relay_agent_cmd, policy_cmd, db_cmd,
)

BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (argparse prints the usage block first)."""

    def print_help(self, file: IO[str] | None = None) -> None:
        # argparse swallows write errors here; a closed pipe must reach main() instead.
        (file or sys.stdout).write(self.format_help())

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: usage error: {one_line(message)} (see `{self.prog} --help`)\n")


class _Version(argparse.Action):
    """--version, written so that a closed pipe reaches main() (argparse's own swallows it)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        sys.stdout.write(f"mailconsole {__version__}\n")
        parser.exit()


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On subcommands the defaults are suppressed so that `--db` given before the
    # command is not overwritten by the subcommand's own default.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--db", default=default, metavar="URL", type=store_value,
                        help=f"store: {SUPPORTED_STORES} (default: $MAILCONSOLE_DB, else the user data dir)")
    parser.add_argument("--account", default=argparse.SUPPRESS if suppress else "default", metavar="NAME", type=text_value,
                        help="account to act on (default: default)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailconsole",
        description="Operate a bulk e-mail sender: stop a wrong mailing before it reaches everyone.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    _global_options(parser, suppress=False)
    console_cmd.add_console_options(parser)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub, common)
    parser.set_defaults(handler=console_cmd.run_console)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        ctx = Context(args)
    except BrokenPipeError:  # `mailconsole --help | head -1`
        return _broken_pipe()
    except SystemExit:  # --help, --version, a usage error: what they wrote may still be buffered
        if not _flush_stdout():
            return _broken_pipe()
        raise
    try:
        code = int(args.handler(ctx) or 0)
        sys.stdout.flush()  # here, not at exit: a closed pipe is caught below
        return code
    except UsageError as exc:
        _error(f"usage error: {exc}")
        return 2
    except StoreError as exc:
        _error(f"error: {exc}")
        return 1
    except BrokenPipeError:
        return _broken_pipe()
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except OSError as exc:
        # The operator's environment (a file, a directory, the disk), not a bug.
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"error: {where}{exc.strerror or exc}")
        return 1
    except Exception as exc:  # noqa: BLE001  the last resort: one line, never a traceback
        if os.environ.get("MAILCONSOLE_DEBUG") == "1":
            traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {exc} (please report; run with MAILCONSOLE_DEBUG=1 for the traceback)")
        return 1
    finally:
        try:
            ctx.close()
        except Exception:  # noqa: BLE001  closing must not hide the error being reported
            pass
        if not _flush_stdout():
            _broken_pipe()  # after an error: its exit code stands


def _flush_stdout() -> bool:
    """Flush stdout now, so a closed pipe is noticed here rather than at interpreter exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return False
    except (OSError, ValueError):
        pass  # a closed or odd stdout: nothing more to say on it
    return True


def _error(text: str) -> None:
    try:
        print(f"mailconsole: {one_line(text)}", file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr is gone too: the exit code is all that is left


def _broken_pipe() -> int:
    """The reader of our output went away (`| head`): stop quietly.

    The recipe of the Python docs ("Note on SIGPIPE"): point stdout at /dev/null so
    the interpreter's final flush of what is still buffered does not raise again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # stdout is not a real file (a test's capture): nothing will flush it at exit
    return BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
