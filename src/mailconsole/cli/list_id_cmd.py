"""`mailconsole list-id`: the account's default List-Id (RFC 2919), for mailings that name none."""

from __future__ import annotations

import argparse

from ..store import list_headers
from .common import Context, UsageError, safe, text_value


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("list-id", parents=[common],
                       help="show or set the account's default List-Id ('Name <list.example.com>')")
    p.add_argument("value", nargs="?", type=text_value, metavar="LIST-ID", help="the new default; omit it to show the current one")
    p.add_argument("--clear", action="store_true", help="remove the default (mailings without --list-id then send none)")
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    a = ctx.args
    store = ctx.store(create=False)
    if a.clear and a.value is not None:
        raise UsageError("give a List-Id or --clear, not both")
    if a.value is None and not a.clear:
        current = list_headers.account_list_id(store, ctx.account)
        ctx.print(f"account {safe(ctx.account)}: default List-Id {safe(current) if current else '(none)'}")
        return 0
    stored = list_headers.set_account_list_id(store, ctx.actor, None if a.clear else a.value, ctx.account)
    ctx.print(f"account {safe(ctx.account)}: default List-Id {safe(stored) if stored else 'cleared'}")
    return 0
