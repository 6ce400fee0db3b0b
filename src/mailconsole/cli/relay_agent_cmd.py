"""`mailconsole relay-agent`: hold, release and delete at the relay with the stop (see mailconsole.relay)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from .common import Context, UsageError, safe


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("relay-agent", parents=[common],
                       help="beside a relay: hold what it still queues when sending stops, until SIGINT/SIGTERM")
    p.add_argument("--postfix", action="store_true", help="the relay is Postfix (the one kind supported)")
    p.add_argument("--postfix-config", default=None, metavar="DIR",
                   help="the Postfix configuration directory (default: Postfix's own, /etc/postfix)")
    p.add_argument("--postfix-log", default=None, metavar="PATH",
                   help="the mail log to follow (default: Postfix's maillog_file)")
    p.add_argument("--relay", default=None, metavar="HOST:PORT",
                   help="act only on messages the engines handed to this address (default: any relay's)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    from ..relay.agent import Agent
    from ..relay.interface import RelayError
    from ..relay.postfix import PostfixQueue

    args = ctx.args
    if not args.postfix:
        raise UsageError("relay-agent needs the relay's kind: --postfix (the one supported)")
    if args.relay is not None and (":" not in args.relay or not args.relay.rsplit(":", 1)[1].isdigit()):
        raise UsageError(f"--relay must be HOST:PORT as the engines' transport names it (got {args.relay!r})")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        queue = PostfixQueue(args.postfix_config, args.postfix_log)
    except RelayError as exc:
        raise UsageError(str(exc)) from None
    store = ctx.store(create=False)
    agent = Agent(store, queue, relay=args.relay)

    def stop(signum: int, frame: object) -> None:
        agent.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def ready(a: Agent) -> None:
        ctx.print(f"relay agent {safe(a.agent_id)} on {safe(queue.name)}, following {safe(queue.log_path)}; "
                  "Ctrl-C or SIGTERM stops it")
        sys.stdout.flush()

    agent.run(on_ready=ready)
    queue.close()
    ctx.print(f"relay agent {safe(agent.agent_id)} stopped: " +
              ", ".join(f"{n} {what}" for what, n in agent.counts.items()))
    return 0
