"""`mailconsole serve`: run the sender engine headless (see mailconsole.engine)."""

from __future__ import annotations

import argparse
import logging
import sys

from ..store import StoreError
from .common import Context, UsageError, check_regular_file, safe

MAX_CONFIG_BYTES = 1 << 20  # a configuration is a few lines; more is the wrong file


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the sender engine headless until SIGINT/SIGTERM")
    p.add_argument("--workers", type=int, default=None, help="SMTP connections / sender tasks (default 8)")
    p.add_argument("--transport", default=None,
                   help="smtp://[user@]host:port[?starttls=required|opportunistic|off][&cafile=PEM], smtps://..., "
                        "maildir:PATH or null: (default: $MAILCONSOLE_TRANSPORT, else null:); "
                        "the SMTP password comes from $MAILCONSOLE_SMTP_PASSWORD or the config file")
    p.add_argument("--rate", type=float, default=None, help="messages per second at most")
    p.add_argument("--batch", type=int, default=None, help="messages per claim (default 100)")
    p.add_argument("--config", default=None, help="TOML configuration file (keys of an [engine] table)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.add_argument("--verbose", action="store_true", help="log debug details too (stop timings)")
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    # The engine is only imported by the commands that run it.
    from ..engine.config import ConfigError, load_config
    from ..engine.service import run_service

    args = ctx.args
    if args.config is not None:
        check_regular_file(args.config, "configuration file", MAX_CONFIG_BYTES)
    try:
        config = load_config(
            flags={"workers": args.workers, "transport": args.transport, "rate": args.rate, "batch": args.batch},
            toml_path=args.config,
        )
        from ..engine.transports import make_transport

        make_transport(config)  # reject a bad URL before touching the store
        from ..engine.dkim_signing import load_signer

        load_signer(config.dkim_key_file, config.dkim_selector, config.dkim_domain)  # and a bad DKIM key
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    store = ctx.store()

    def ready(engine) -> None:  # type: ignore[no-untyped-def]
        ctx.print(f"engine {safe(engine.engine_id)} sending via {safe(config.masked_transport)} "
                  f"with {config.workers} workers; Ctrl-C or SIGTERM stops it")
        sys.stdout.flush()

    try:
        engine = run_service(store, config, on_ready=ready)
    except OSError as exc:
        raise StoreError(f"engine failed: {exc}") from None
    ctx.print(f"engine {safe(engine.engine_id)} stopped: {engine.sent_total} sent, {engine.failed_total} failed")
    return 0
