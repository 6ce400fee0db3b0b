"""`mailconsole accounts`: every account of the store, its stop state, rate and queue."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from ..store import status
from .common import Context, bounded_number, safe, when

MAX_INTERVAL = 60.0


def interval_value(value: str) -> float:
    """Seconds between the two reads that give each account's rate: 0 (no rate) to MAX_INTERVAL."""
    return bounded_number(value, "seconds", MAX_INTERVAL)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("accounts", parents=[common], help="every account: stopped or running, rate, queue")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--interval", type=interval_value, default=1.0, metavar="SECONDS",
                   help="measure each account's rate over this long (default 1; 0: no rate)")
    p.set_defaults(handler=run_accounts)


def run_accounts(ctx: Context) -> int:
    store = ctx.store(create=False)
    before = status.all_accounts(store)
    rates: dict[str, float] | None = None
    if ctx.args.interval > 0:
        # Engines report one rate for all accounts: each account's own comes from its counter.
        started = time.monotonic()
        time.sleep(ctx.args.interval)
        after = status.all_accounts(store)
        rates = status.sent_rates(before, after, time.monotonic() - started)
        before = after
    if ctx.args.json:
        ctx.print_json([{**a.as_dict(), "rate": None if rates is None else rates.get(a.name, 0.0)} for a in before])
        return 0
    t = Table("account", "state", "stopped since, by", "msgs/s", "queued", "in flight", "mailings", title="accounts")
    for a in before:
        state = "[bold white on red] STOPPED [/]" if a.stopped else "[bold green]RUNNING[/]"
        since = f"{when(a.stopped_at)} by {safe(a.stopped_by or '?')}" if a.stopped else "-"
        rate = "-" if rates is None else f"{rates.get(a.name, 0.0):,.1f}"
        t.add_row(safe(a.name), state, since, rate, f"{a.queued:,}", f"{a.in_flight:,}", f"{a.mailings:,}")
    ctx.out.print(t)
    return 0
