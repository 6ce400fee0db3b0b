"""`mailconsole migrate`: upgrade a store's schema in place (see mailconsole.store.migrate)."""

from __future__ import annotations

import argparse

from ..store.errors import Refused
from ..store.schema import revision_of
from .common import Context, safe


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("migrate", parents=[common],
                       help="upgrade the store's schema to this version's (an SQLite file is backed up first)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the store's schema version and the target one; change nothing")
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    from ..store import migrate  # Alembic is imported by this command only

    store = migrate.open_store(ctx.db)
    ctx._store = store  # closed with the context
    where = safe(store.where)
    plan = migrate.plan(store)
    migrate.check_upgradable(plan)
    if not plan.needed:
        ctx.print(f"store {where}: schema {plan.current} is current; nothing to do")
        return 0
    if getattr(ctx.args, "read_only", False) and not ctx.args.dry_run:
        raise Refused("--read-only changes nothing; run `mailconsole migrate` without it (or with --dry-run)")
    if ctx.args.dry_run:
        backup = " after a backup copy beside it" if store.backend.backs_up and plan.current != plan.target else ""
        ctx.print(f"store {where}: schema {plan.current}, target {plan.target}; `mailconsole migrate` "
                  f"would upgrade it{backup} (dry run: nothing changed)")
        return 0
    result = migrate.upgrade(store)
    if result.backup is not None:
        kept = f"backup of schema {plan.current}: {safe(result.backup)}"
    elif store.backend.backs_up:
        kept = "no backup needed"
    else:
        kept = "no backup taken: back up the database with its own tools first"
    if plan.current == plan.target:
        done = f"schema {plan.target}, now recorded as Alembic revision {revision_of(plan.target)}"
    else:
        done = f"schema {plan.current} → {plan.target}"
    ctx.print(f"store {where}: {done} ({kept}; write lock held {result.lock_held * 1000:.0f} ms)")
    return 0
