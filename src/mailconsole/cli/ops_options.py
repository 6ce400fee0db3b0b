"""The operations flags shared by `serve`, `relay-agent`, `stop`, `resume` and the console.

--metrics (a Prometheus endpoint), --notify-command / --notify-url (the hook) and
--log-format (text or JSON lines): see mailconsole.ops.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .common import UsageError, printable

if TYPE_CHECKING:
    from .common import Context
    from ..ops.notify import Event
    from ..ops.metrics import MetricsServer
    from ..ops.notify import Notifier

NOTIFY_FLUSH = 15.0  # `stop` / `resume` wait at most this long at exit for their notifications (the act is done)
# `serve` and `relay-agent` promise to exit within 5 s of SIGTERM: what is still queued
# then gets this long, and is reported as not delivered.
SERVICE_NOTIFY_FLUSH = 1.0


def add_notify(p: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    default = argparse.SUPPRESS if suppress else None
    p.add_argument("--notify-command", default=default, metavar="CMD",
                   help="run CMD (no shell) on stop, resume and trouble, the event as JSON on stdin "
                        "(default: $MAILCONSOLE_NOTIFY_COMMAND)")
    p.add_argument("--notify-url", default=default, metavar="URL",
                   help="POST the event as JSON to URL; keep a secret one in $MAILCONSOLE_NOTIFY_URL "
                        "rather than on the command line, where ps shows it")
    p.add_argument("--notify-timeout", default=argparse.SUPPRESS if suppress else "5", metavar="SECONDS",
                   help="bound on one attempt of the hook, tried 3 times (default 5)")


def add_service(p: argparse.ArgumentParser) -> None:
    """--metrics and --log-format: for the long-running processes."""
    p.add_argument("--metrics", default=None, metavar="HOST:PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0: a free one)")
    p.add_argument("--log-format", default="text", choices=("text", "json"),
                   help="text lines, or one JSON object a line for log collectors (default text)")
    add_notify(p)


def metrics_server(address: str | None) -> "MetricsServer | None":
    """The metrics endpoint, bound before the engine starts (a taken port is a usage error)."""
    if address is None:
        return None
    from ..ops.metrics import MetricsAddressError, MetricsServer

    try:
        return MetricsServer.listen(address)
    except MetricsAddressError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on {printable(address)}: {exc.strerror or exc}") from None


def notifier(args: argparse.Namespace, on_problem=None) -> "Notifier | None":  # type: ignore[no-untyped-def]
    """The notifier the flags (or the environment) ask for; UsageError if it cannot work."""
    from ..ops.notify import NotifyConfigError, from_settings

    try:
        timeout = float(str(getattr(args, "notify_timeout", "5")).strip())
    except ValueError:
        raise UsageError(f"--notify-timeout must be a number of seconds (got {printable(args.notify_timeout)!r})") from None
    try:
        return from_settings(getattr(args, "notify_command", None), getattr(args, "notify_url", None),
                             timeout=timeout, on_problem=on_problem)
    except NotifyConfigError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # shlex: an unclosed quote
        raise UsageError(f"--notify-command: {exc}") from None


def operator_event(ctx: "Context", kind: str, why: str | None, generation: int | None = None,
                   counts: dict[str, int] | None = None) -> "Event":
    """A stop or resume by the operator running this command, with the account's queue as it is now."""
    from ..ops.notify import Event
    from ..store.gauges import account_gauges

    figures: dict[str, int] = {}
    try:
        row = next((r for r in account_gauges(ctx.store(create=False)) if r.name == ctx.account), None)
    except Exception:  # noqa: BLE001  the event goes out without figures rather than not at all
        row = None
    if row is not None:
        figures = {**row.queue, "generation": row.generation}
    if generation is not None:
        figures["generation"] = generation
    return Event.by(ctx.actor, kind, why=why, account=ctx.account, counts={**figures, **(counts or {})},
                    program=f"mailconsole {kind}")


def finish(notifier: "Notifier | None", wait: float = NOTIFY_FLUSH) -> None:
    """At a command's end: let its notifications go out (at most `wait` s), and say if one failed."""
    if notifier is None:
        return
    done = notifier.close(wait)
    problem = notifier.problem or (None if done else f"notification still not delivered after {wait:g} s")
    if problem:
        print(f"mailconsole: warning: {problem}", file=sys.stderr)
