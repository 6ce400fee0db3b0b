"""`mailconsole serve`: run the sender engine headless (see mailconsole.engine)."""

from __future__ import annotations

import argparse
import logging
import sys

from ..store import StoreError
from . import ops_options
from .common import Context, UsageError, check_regular_file, printable, safe

MAX_CONFIG_BYTES = 1 << 20  # a configuration is a few lines; more is the wrong file


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the sender engine headless until SIGINT/SIGTERM")
    # Numbers are read as text and checked by the engine's configuration, so that a
    # bad value gets the same one-line explanation from a flag as from the TOML file.
    p.add_argument("--workers", default=None, help="SMTP connections / sender tasks, 1 to 1000 (default 8)")
    p.add_argument("--transport", default=None,
                   help="smtp://[user@]host:port[?starttls=required|opportunistic|off][&cafile=PEM], smtps://..., "
                        "maildir:PATH or null: (default: $MAILCONSOLE_TRANSPORT, else null:); "
                        "the SMTP password comes from $MAILCONSOLE_SMTP_PASSWORD or the config file")
    p.add_argument("--rate", default=None, help="messages per second at most, 0.001 to 1000000 (default: no cap)")
    p.add_argument("--batch", default=None, help="messages per claim, 1 to 1000 (default 100)")
    p.add_argument("--relay-backlog", default=None, metavar="N",
                   help="keep at most N of our messages waiting at the relay, 1 to 100000000 (needs a relay agent: "
                        "`mailconsole relay-agent`; default: no limit)")
    p.add_argument("--config", default=None, help="TOML configuration file (keys of an [engine] table)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.add_argument("--verbose", action="store_true", help="log debug details too (stop timings)")
    ops_options.add_service(p)
    p.set_defaults(handler=run)


def _number(flag: str, text: str | None, kind: type[int] | type[float]) -> int | float | None:
    """A numeric flag's value (None: not given); its range is the configuration's to check."""
    if text is None:
        return None
    try:
        return kind(text.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"{flag} must be {what} (got {printable(text)!r})") from None


def run(ctx: Context) -> int:
    # The engine is only imported by the commands that run it.
    from ..engine.config import ConfigError, load_config

    args = ctx.args
    if args.config is not None:
        check_regular_file(args.config, "configuration file", MAX_CONFIG_BYTES)
    try:
        flags = {
            "workers": _number("--workers", args.workers, int),
            "rate": _number("--rate", args.rate, float),
            "batch": _number("--batch", args.batch, int),
            "relay_backlog": _number("--relay-backlog", args.relay_backlog, int),
        }
        config = load_config(flags={**flags, "transport": args.transport}, toml_path=args.config)
        from ..engine.transports import make_transport

        make_transport(config)  # reject a bad URL before touching the store
        from ..engine.dkim_signing import load_signer

        load_signer(config.dkim_key_file, config.dkim_selector, config.dkim_domain)  # and a bad DKIM key
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    from ..ops import logs

    # Replies, names and reasons in the log come from outside: escaped either way (ops/logs.py).
    logs.setup(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO, args.log_format)
    notifier = ops_options.notifier(args)
    # Never created here: a mistyped --db must not start an engine on an empty store.
    store = ctx.store(create=False)
    metrics = ops_options.metrics_server(args.metrics)
    try:
        return _serve(ctx, store, config, metrics, notifier)
    finally:
        if metrics is not None:
            metrics.close()
        ops_options.finish(notifier, ops_options.SERVICE_NOTIFY_FLUSH)


def _serve(ctx: Context, store, config, metrics, notifier) -> int:  # type: ignore[no-untyped-def]
    from ..engine.service import EngineCrashed, run_service

    args = ctx.args

    def prepare(engine) -> None:  # type: ignore[no-untyped-def]
        if metrics is not None:
            from ..ops.metrics import EngineCollector

            metrics.add(EngineCollector(engine, notifier))
        if notifier is not None:
            from ..ops.notify import engine_listener

            engine.on_event = engine_listener(notifier, engine)
            engine.outside_note = lambda: notifier.problem

    def ready(engine) -> None:  # type: ignore[no-untyped-def]
        ctx.print(f"engine {safe(engine.engine_id)} sending via {safe(config.masked_transport)} "
                  f"with {config.workers} workers; Ctrl-C or SIGTERM stops it")
        if metrics is not None:
            ctx.print(f"metrics at {metrics.url}")
        sys.stdout.flush()

    try:
        engine = run_service(store, config, on_ready=ready, prepare=prepare)
    except EngineCrashed as exc:
        # One line; the traceback is in the log with --verbose.
        print(f"mailconsole: error: {exc}{'' if args.verbose else ' (details with --verbose)'}", file=sys.stderr)
        return 1
    except OSError as exc:
        raise StoreError(f"engine failed: {exc}") from None
    ctx.print(f"engine {safe(engine.engine_id)} stopped: {engine.sent_total} sent, {engine.failed_total} failed")
    return 0
