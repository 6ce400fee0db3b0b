"""`mailconsole serve`: run the sender engine headless (see mailconsole.engine)."""

from __future__ import annotations

import argparse

from .common import Context


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the sender engine headless until SIGINT/SIGTERM")
    p.add_argument("--workers", type=int, default=None, help="SMTP connections / sender tasks")
    p.add_argument("--transport", default=None, help="smtp://host:port, smtps://…, maildir:PATH or null:")
    p.add_argument("--rate", type=float, default=None, help="messages per second at most")
    p.add_argument("--config", default=None, help="TOML configuration file")
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    from ..engine.service import serve  # the engine is only imported by the commands that run it

    return serve(ctx)
