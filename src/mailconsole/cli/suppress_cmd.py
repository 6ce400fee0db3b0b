"""`mailconsole suppress add|remove|list|import`: the account's suppression list."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from ..store import suppressions
from ..store.errors import Refused
from .common import Context, one_line, safe, text_value, when


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("suppress", parents=[common], help="addresses never sent to again (unsubscribed, bounced, complained)")
    ssub = p.add_subparsers(dest="suppress_command", metavar="add|remove|list|import", required=True)
    s = ssub.add_parser("add", parents=[common], help="suppress an address: nothing more is sent to it, from now on")
    s.add_argument("address", type=text_value, metavar="ADDR")
    s.add_argument("--reason", type=text_value, help="why (unsubscribed, bounced, complaint …)")
    s.set_defaults(handler=run_add)
    s = ssub.add_parser("remove", parents=[common], help="send to an address again (in mailings created from now on)")
    s.add_argument("address", type=text_value, metavar="ADDR")
    s.set_defaults(handler=run_remove)
    s = ssub.add_parser("list", parents=[common], help="the suppressed addresses")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run_list)
    s = ssub.add_parser("import", parents=[common], help="suppress every address of a CSV ('email' column, optional 'reason')")
    s.add_argument("csv", type=Path, metavar="CSV")
    s.add_argument("--reason", type=text_value, help="reason for rows that give none")
    s.set_defaults(handler=run_import)


def run_add(ctx: Context) -> int:
    a = ctx.args
    if suppressions.add(ctx.store(create=False), ctx.actor, a.address, a.reason, ctx.account):
        ctx.print(f"suppressed {safe(a.address.strip())}: nothing more is sent to it")
    else:
        ctx.print(f"{safe(a.address.strip())} was already suppressed; nothing changed")
    return 0


def run_remove(ctx: Context) -> int:
    a = ctx.args
    if not suppressions.remove(ctx.store(create=False), ctx.actor, a.address, ctx.account):
        raise Refused(f"{one_line(a.address.strip())} is not suppressed; nothing changed (see `mailconsole suppress list`)")
    ctx.print(f"{safe(a.address.strip())} is no longer suppressed (messages already suppressed stay unsent)")
    return 0


def run_list(ctx: Context) -> int:
    rows = suppressions.list_suppressions(ctx.store(create=False), ctx.account)
    if ctx.args.json:
        ctx.print_json([r.as_dict() for r in rows])
        return 0
    table = Table("address", "reason", "since", "by")
    for r in rows:
        table.add_row(safe(r.email), safe(r.reason or ""), when(r.created_at), safe(r.created_by))
    ctx.out.print(table)
    ctx.print(f"{len(rows):,} suppressed address(es)")
    return 0


def run_import(ctx: Context) -> int:
    a = ctx.args
    result = suppressions.import_csv(ctx.store(create=False), ctx.actor, a.csv, a.reason, ctx.account)
    ctx.print(f"suppressed {result.added:,} address(es) from {safe(a.csv.name)}; {result.already:,} already were")
    return 0
