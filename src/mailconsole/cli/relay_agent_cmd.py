"""`mailconsole relay-agent`: hold, release and delete at the relay with the stop (see mailconsole.relay)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from . import ops_options
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
    ops_options.add_service(p)
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
    from ..ops import logs

    logs.setup(logging.WARNING if args.quiet else logging.INFO, args.log_format)
    notifier = ops_options.notifier(args)
    try:
        queue = PostfixQueue(args.postfix_config, args.postfix_log)
    except RelayError as exc:
        raise UsageError(str(exc)) from None
    store = ctx.store(create=False)
    metrics = ops_options.metrics_server(args.metrics)
    agent = Agent(store, queue, relay=args.relay)
    if metrics is not None:
        from ..ops.metrics import RelayAgentCollector

        metrics.add(RelayAgentCollector(agent, notifier))
    if notifier is not None:
        from ..ops.notify import agent_listener

        agent.on_event = agent_listener(notifier, agent)
        notifier.on_problem = lambda problem: agent.report_problem("notify", problem)

    def stop(signum: int, frame: object) -> None:
        agent.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def ready(a: Agent) -> None:
        ctx.print(f"relay agent {safe(a.agent_id)} on {safe(queue.name)}, following {safe(queue.log_path)}; "
                  "Ctrl-C or SIGTERM stops it")
        if metrics is not None:
            ctx.print(f"metrics at {metrics.url}")
        sys.stdout.flush()

    try:
        agent.run(on_ready=ready)
    finally:
        queue.close()
        if metrics is not None:
            metrics.close()
        ops_options.finish(notifier, ops_options.SERVICE_NOTIFY_FLUSH)
    ctx.print(f"relay agent {safe(agent.agent_id)} stopped: " +
              ", ".join(f"{n} {what}" for what, n in agent.counts.items()))
    return 0
