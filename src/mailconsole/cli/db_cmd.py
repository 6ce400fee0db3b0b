"""`mailconsole db roles`: the PostgreSQL roles for least privilege (see mailconsole.store.roles)."""

from __future__ import annotations

import argparse
import sys

from ..store import roles
from ..store.connection import default_db_url, to_url
from ..store.errors import Refused
from .common import Context, safe


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("db", parents=[common], help="database administration (PostgreSQL stores)")
    dsub = p.add_subparsers(dest="db_command", metavar="roles", required=True)
    r = dsub.add_parser(
        "roles", parents=[common],
        help="print (or --apply) the SQL for the engine, operator and viewer roles",
        description="engine: claim, record, heartbeat, acknowledge, nothing else (no stop state, templates "
                    "or mailings); operator: everything; viewer: read only. Apply as the owner of the "
                    "store's tables, again after every `mailconsole migrate`.",
    )
    r.add_argument("--apply", action="store_true", help="run the SQL on the store instead of printing it")
    r.add_argument("--prefix", default=roles.DEFAULT_PREFIX, metavar="NAME",
                   help=f"role names are NAME_engine, NAME_operator, NAME_viewer (default: {roles.DEFAULT_PREFIX})")
    r.set_defaults(handler=run_roles)


def run_roles(ctx: Context) -> int:
    a = ctx.args
    url = to_url(ctx.db or default_db_url())
    names = roles.role_names(a.prefix)  # a bad prefix is refused before anything else
    if not a.apply:
        sys.stdout.write(roles.roles_sql(roles.database_of(url), a.prefix))
        return 0
    if getattr(a, "read_only", False):
        raise Refused("--read-only changes nothing; run `mailconsole db roles --apply` without it")
    roles.apply(url, a.prefix)
    ctx.print(f"database {safe(roles.database_of(url))}: roles {', '.join(names.all())} set "
              "(log in as members of them: CREATE ROLE … LOGIN IN ROLE …)")
    return 0
