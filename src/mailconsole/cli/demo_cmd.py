"""`mailconsole demo`: a fresh demo store, an embedded engine and the console."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import demo
from ..store import mailings
from .common import Context


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[common], help="open the console on a fresh demo store (nothing to configure)")
    p.add_argument("--seed-only", action="store_true", help="build the demo store, print its status and exit")
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    target = Path(ctx.db) if ctx.db else demo.default_demo_path()
    with demo.demo_lock(target):  # a second demo would delete this store under the first
        return _run(ctx, Path(ctx.db) if ctx.db else None)


def _run(ctx: Context, path: Path | None) -> int:
    store = demo.fresh_demo_store(path)
    ctx._store = store
    ctx.print(f"demo store: {store.where}")
    demo.seed(store)
    if not ctx.args.seed_only:
        try:
            from ..console.launch import launch_demo
        except ImportError:
            launch_demo = None
        if launch_demo is not None:
            return launch_demo(ctx, store)
    importer = demo.start_preparing(store, rows=5_000, batch=500, pause=0.05)
    time.sleep(0.3)  # let a few batches land so "preparing" shows progress
    from .control_cmds import mailings_table

    ctx.out.print(mailings_table(mailings.list_mailings(store, planned=True), ctx.out.width))
    importer.join()
    return 0
