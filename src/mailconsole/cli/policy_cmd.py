"""`mailconsole policy show|set|acknowledge`: when the engine pauses a mailing or stops the account by itself."""

from __future__ import annotations

import argparse

from rich.table import Table

from ..store import auto_pause, policy
from .common import Context, UsageError, safe, text_value, when


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("policy", parents=[common],
                       help="automatic pause/stop thresholds, and bounces feeding the suppression list")
    psub = p.add_subparsers(dest="policy_command", metavar="show|set|acknowledge", required=True)
    s = psub.add_parser("show", parents=[common], help="the store's policy, and automatic pauses not yet acknowledged")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run_show)
    s = psub.add_parser("set", parents=[common], help="change settings: KEY=VALUE … (all checked first)")
    s.add_argument("settings", nargs="+", type=text_value, metavar="KEY=VALUE",
                   help=f"e.g. max_permanent=10%% window=200 suppress_bounces=on; keys: {', '.join(policy.KEYS)}")
    s.set_defaults(handler=run_set)
    s = psub.add_parser("acknowledge", parents=[common],
                        help="mark the account's automatic pauses and stops as seen (they stay paused/stopped)")
    s.set_defaults(handler=run_acknowledge)


def _pairs(settings: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{item!r} is not KEY=VALUE (e.g. max_permanent=10%)")
        out[key.strip()] = value
    return out


def _table(p: policy.Policy) -> Table:
    table = Table("setting", "value", "meaning")
    default = policy.Policy()
    for key in policy.KEYS:
        value = policy.describe(key, getattr(p, key))
        if getattr(p, key) != getattr(default, key):
            value = f"[bold]{value}[/] (default {policy.describe(key, getattr(default, key))})"
        table.add_row(key, value, policy.HELP[key])
    return table


def run_show(ctx: Context) -> int:
    store = ctx.store(create=False)
    current = policy.get(store)
    trips = auto_pause.open_trips(store, ctx.account)
    if ctx.args.json:
        ctx.print_json({"policy": current.as_dict(), "unacknowledged": [t.as_dict() for t in trips]})
        return 0
    ctx.out.print(_table(current))
    for t in trips:
        ctx.print(f"[bold red]automatic[/] {when(t.at)}: {safe(t.summary())}")
    if trips:
        ctx.print("acknowledge with `mailconsole policy acknowledge` (unpause or resume is its own action)")
    return 0


def run_set(ctx: Context) -> int:
    new, changed = policy.set_values(ctx.store(create=False), ctx.actor, _pairs(ctx.args.settings), ctx.account)
    if not changed:
        ctx.print("nothing changed: the policy already has these values")
        return 0
    for key, (old, value) in changed.items():
        ctx.print(f"{key}: {policy.describe(key, old)} -> {policy.describe(key, value)}")
    ctx.print("engines apply it at their next maintenance round (within seconds)")
    return 0


def run_acknowledge(ctx: Context) -> int:
    n = auto_pause.acknowledge(ctx.store(create=False), ctx.actor, ctx.account)
    ctx.print(f"acknowledged {n} automatic pause(s)/stop(s)" if n else "nothing to acknowledge")
    return 0
