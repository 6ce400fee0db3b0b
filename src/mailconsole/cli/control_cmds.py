"""The incident commands: init, status, stop, resume, audit."""

from __future__ import annotations

import argparse

from rich import box
from rich.table import Table

from ..store import accounts, audit, relays, status, stop_intent
from ..store.backends import FenceResult
from ..store.errors import Refused, StoreError
from . import ops_options
from .common import Context, UsageError, bounded_number, confirm, days_value, positive_int, safe, when
from .waiting import WaitReporter


RELAY_WAIT = 2.0  # seconds `stop` waits for the relay agents' acknowledgements
MAX_RELAY_WAIT = 600.0


def _relay_wait(value: str) -> float:
    return bounded_number(value, "seconds", MAX_RELAY_WAIT)


def _bound_value(value: str) -> float:
    """The stop's wait for the engines' confirmation: 0 to 60 seconds."""
    return bounded_number(value, "seconds", 60)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("init", parents=[common], help="create the store (and the default account)")
    p.set_defaults(handler=run_init)

    p = sub.add_parser("status", parents=[common], help="stop state, queue totals, mailings and engines")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_status)

    p = sub.add_parser("stop", parents=[common], help="EMERGENCY STOP: block every mailing of the account now")
    p.add_argument("--reason", default=None, help="why (shown to other operators and in the audit log)")
    p.add_argument("--relay-wait", type=_relay_wait, default=RELAY_WAIT, metavar="SECONDS",
                   help=f"after the stop, wait up to this long for relay agents to hold what their relays queue "
                        f"(default {RELAY_WAIT:g}; 0: do not wait)")
    p.add_argument("--bound", type=_bound_value, default=None,
                   help="seconds to wait for every engine to confirm (default 2, or $MAILCONSOLE_STOP_BOUND)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    ops_options.add_notify(p, suppress=True)  # given before the command too
    p.set_defaults(handler=run_stop)

    p = sub.add_parser("resume", parents=[common], help="resume after a stop (applies the 7-day rule)")
    p.add_argument("--preview", action="store_true", help="show what a resume would do; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--max-age-days", type=days_value, default=accounts.DEFAULT_MAX_AGE_DAYS,
                   help="queued messages due longer ago than this are suspended (default 7)")
    ops_options.add_notify(p, suppress=True)  # given before the command too
    p.set_defaults(handler=run_resume)

    p = sub.add_parser("audit", parents=[common], help="the operator action log, newest first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=positive_int, default=50, help="at most this many entries (default 50)")
    p.set_defaults(handler=run_audit)


def run_init(ctx: Context) -> int:
    store = ctx.store(create=True)
    accounts.ensure_account(store, ctx.account)
    ctx.print(f"store ready: {safe(store.where)} (account {safe(ctx.account)})")
    return 0


def _state_line(a: accounts.AccountState, live_engines: int | None = None) -> str:
    """The headline; `live_engines` 0 says that a running account sends nothing (None: not known here)."""
    if not a.stopped:
        if live_engines == 0:
            return (f"[bold yellow]RUNNING — no engine: nothing is being sent[/] (account {safe(a.name)}, stop "
                    f"generation {a.generation}); start one with `mailconsole serve` or a console")
        return f"[bold green]RUNNING[/] — account {safe(a.name)} is sending (stop generation {a.generation})"
    who = safe(a.stopped_by) + (f" from {safe(a.stopped_from)}" if a.stopped_from else "")
    reason = f" — reason: {safe(a.reason)}" if a.reason else ""
    return f"[bold white on red] STOPPED [/] account {safe(a.name)} since {when(a.stopped_at)} by {who}{reason} (generation {a.generation})"


def _intent_line(intent: stop_intent.Intent) -> str:
    """A stop intent that holds the account on this host although the store has no stop (yet)."""
    since = f"since {when(intent.at)} by {safe(intent.actor)} (pid {intent.pid} on {safe(intent.host)})"
    if intent.writer_alive():
        return (f"[bold white on red] STOP REQUESTED [/] {since}, waiting for the store; "
                "engines on this host already send nothing of this account")
    return (f"[bold white on red] STOP INTENT NOT APPLIED [/] {since}: its writer is gone; engines on this host "
            "hold this account's mail until `mailconsole stop` applies it or `mailconsole resume` clears it")


def run_status(ctx: Context) -> int:
    store = ctx.store(create=False)
    ov = status.overview(store, ctx.account)
    intent = stop_intent.pending(store, ov.account.id, ov.account.generation)
    if ctx.args.json:
        ctx.print_json({**ov.as_dict(), "stop_intent": intent.as_dict() if intent else None})
        return 0
    ctx.print(_state_line(ov.account, len(ov.live_engines)))
    if intent is not None:
        ctx.print(_intent_line(intent))
    q = ov.queue
    ctx.print(
        f"queue: {q['queued']:,} queued · {q['in_flight']:,} in flight · {q['sent']:,} sent · "
        f"{q['failed']:,} failed · {q['suspended']:,} suspended · {q['suppressed']:,} suppressed "
        f"— {ov.rate:,.0f} msgs/s"
    )
    live = ov.live_engines
    if ov.account.stopped:
        line = f"engines: {ov.acknowledged}/{len(live)} acknowledged the stop, {ov.in_flight} in flight"
        if ov.live_relays:
            line += f"; relays: {ov.relays_acknowledged}/{len(ov.live_relays)} holding what they had queued"
        ctx.print(line)
    ctx.out.print(mailings_table(ov.mailings, ctx.out.width))
    if ov.engines:
        t = Table("engine", "host", "pid", "workers", "in flight", "msgs/s", "acked gen", "state", title="engines")
        for e in ov.engines:
            t.add_row(e.id[:8], safe(e.host), str(e.pid), str(e.workers), str(e.in_flight) if e.alive else "-",
                      f"{e.sent_rate:,.0f}" if e.alive else "-",
                      str(e.acknowledged_generation(ov.account.id)) if e.alive else "-",
                      e.state if e.alive else "gone")
        ctx.out.print(t)
        for e in ov.engines:
            if e.alive and e.note:
                ctx.print(f"engine {e.id[:8]} ({safe(e.host)} pid {e.pid}): {safe(e.note)}")
    if not live:
        ctx.print("engines: none running (start one with `mailconsole serve`)")
    if status.hidden_engines_note(ov):
        ctx.print(f"engines: {status.hidden_engines_note(ov)}")
    if ov.relays:
        ctx.out.print(relays_table(ov))
        for r in ov.relays:
            if r.alive and r.note:
                ctx.print(f"relay agent {safe(r.id)} ({safe(r.host)} pid {r.pid}): {safe(r.note)}")
    return 0


def relays_table(ov: status.Overview) -> Table:
    """Each relay agent; for the current stop: held, in delivery at it, delivered and bounced after it."""
    t = Table("relay agent", "relay", "at relay", "held", "in delivery", "delivered after", "bounced after",
              "honoured", "state", title="relays")
    for r in ov.relays:
        d = status.relay_dict(r, ov.account.id, ov.account.generation)
        stop = d["stop"] or {}
        t.add_row(safe(r.id), safe(r.relay or "any"), "?" if r.queue_size is None else f"{r.queue_size:,}",
                  *(f"{stop[k]:,}" if k in stop else "-" for k in ("held", "in_delivery", "delivered_after", "bounced_after")),
                  ("yes" if d["honoured"] else "NOT YET") if ov.account.stopped else "-",
                  r.state if r.alive else "gone")
    return t


# Short headers and a light box: eleven columns must stay readable in an 80-column
# terminal (the counts right-aligned, so that they line up). Below WIDE the
# schedule is left out, and the title says where to find it.
MAILING_COUNTS = ("rcpts", "queued", "flying", "sent", "failed", "susp.", "suppr.")
WIDE = 100


def mailings_table(rows, width: int | None = None) -> Table:  # type: ignore[no-untyped-def]
    wide = width is None or width >= WIDE
    title = "mailings" if wide else "mailings (schedules: a wider terminal, or --json)"
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("id", justify="right")
    t.add_column("name", ratio=1, min_width=8)
    t.add_column("status", no_wrap=True)
    if wide:
        t.add_column("scheduled (UTC)", no_wrap=True)
    for name in MAILING_COUNTS:
        t.add_column(name, justify="right")
    for m in rows:
        st = m.status
        if st == "preparing" and m.expected:
            st = f"preparing {100 * m.recipients // max(m.expected, 1)}%"
        schedule = [when(m.scheduled_at).removesuffix(" UTC")] if wide else []
        t.add_row(str(m.id), safe(m.name), st, *schedule, f"{m.recipients:,}", f"{m.queued:,}", f"{m.in_flight:,}",
                  f"{m.sent:,}", f"{m.failed:,}", f"{m.suspended:,}", f"{m.suppressed:,}")
    return t


def run_stop(ctx: Context) -> int:
    # Never asks: this is the button for the worst minute of the week. Never fails
    # because another writer holds the store either: it waits, and says why.
    store = ctx.store(create=False)
    # A notification setting that cannot work must not cost the stop: it is said after it.
    try:
        notifier, bad_notify = ops_options.notifier(ctx.args), None
    except UsageError as exc:
        notifier, bad_notify = None, exc
    report = WaitReporter()
    posted: list[stop_intent.Intent] = []

    def on_intent(intent: stop_intent.Intent) -> None:
        posted.append(intent)
        report.say(f"the store is busy: stop intent posted, engines on this host send nothing more of account "
                   f"{ctx.account}; the stop is recorded as soon as the store is free")

    fenced: list[FenceResult] = []
    try:
        a = accounts.stop(store, ctx.actor, ctx.account, ctx.args.reason, on_wait=report, on_intent=on_intent,
                          bound=ctx.args.bound, on_fence=fenced.append)
    except KeyboardInterrupt:
        report.say("interrupted: the stop was NOT applied to the store")
        if posted:
            report.say(f"its stop intent stays: engines on this host hold account {ctx.account}'s mail until "
                       "`mailconsole stop` applies it or `mailconsole resume` clears it")
        return 130
    if report.waited:
        report.say("the store is free again: stop applied")
    unconfirmed = fenced[0].unconfirmed if fenced else ()
    if notifier is not None:  # sent at once, delivered on its own thread meanwhile
        notifier.send(ops_options.operator_event(ctx, "stop", ctx.args.reason, a.generation))
    # After the commit and the dot fence: the stop itself never waits for a relay.
    waited = ctx.args.relay_wait
    relay_problem = None
    try:
        at_relays = relays.wait_for_stop(store, a.id, a.generation, waited)
    except StoreError as exc:  # the stop stands; only the relays' report is missing
        at_relays, relay_problem = [], str(exc)
    if ctx.args.json:
        ctx.print_json({"account": a.name, "stopped": a.stopped, "generation": a.generation,
                        "confirmed": not unconfirmed, "unconfirmed": [u.as_dict() for u in unconfirmed],
                        "relays": [{"agent": r.agent.id, "acknowledged": r.ack is not None,
                                    **(r.ack.as_dict() if r.ack else {})} for r in at_relays],
                        "relays_unreadable": relay_problem})
        return _notified(notifier, bad_notify)
    ctx.print(_state_line(a))
    ctx.print("no message of this account can be claimed any more; resume with `mailconsole resume`")
    for u in unconfirmed:
        ctx.print(f"[yellow]engine {safe(u.engine_id)} (host {safe(u.host)}, pid {u.pid}) did not confirm the stop; "
                  f"last contact {when(u.last_contact)}; certain to send nothing allowed before it "
                  f"since {when(u.certain_by)}[/]")
    if relay_problem is not None:
        report.say(f"the stop is applied, but the relay agents' acknowledgements could not be read: {relay_problem}")
    for r in at_relays:
        ctx.print(safe(r.summary(waited)))
    return _notified(notifier, bad_notify)


def _notified(notifier, bad_notify: UsageError | None) -> int:  # type: ignore[no-untyped-def]
    """After the stop's output: the hook's delivery (bounded), then a bad notify setting said."""
    if notifier is not None:
        ops_options.finish(notifier)
    if bad_notify is not None:
        raise bad_notify
    return 0


def resume_table(plan: accounts.ResumePlan) -> Table:
    """Per mailing, what the resume sends now, suspends by the 7-day rule and leaves held."""
    t = Table(title="on resume (7-day: suspended by the 7-day rule; held: queued, not sent now)", show_footer=True)
    t.add_column("id", justify="right")
    t.add_column("name", footer="total")
    t.add_column("status")
    t.add_column("rev", justify="right")
    t.add_column("send now", justify="right", footer=f"{plan.to_send:,}")
    t.add_column("7-day", justify="right", footer=f"{plan.to_suspend:,}")
    t.add_column("held", justify="right", footer=f"{plan.held:,}")
    for m in plan.mailings:
        t.add_row(str(m.id), safe(m.name), m.status, "-" if m.revision is None else str(m.revision),
                  f"{m.to_send:,}", f"{m.to_suspend:,}", f"{m.held:,}")
    return t


def _resume_summary(plan: accounts.ResumePlan, max_age_days: float) -> str:
    return (f"{plan.to_send:,} will be sent now, {plan.to_suspend:,} suspended by the {max_age_days:g}-day rule, "
            f"{plan.held:,} held (queued in paused, planned or preparing mailings: not sent now)")


def run_resume(ctx: Context) -> int:
    notifier = ops_options.notifier(ctx.args) if not ctx.args.preview else None
    try:
        return _resume(ctx, notifier)
    finally:
        ops_options.finish(notifier)


def _resume(ctx: Context, notifier) -> int:  # type: ignore[no-untyped-def]
    store = ctx.store(create=False)
    plan = accounts.resume_preview(store, ctx.account, ctx.args.max_age_days)
    summary = _resume_summary(plan, ctx.args.max_age_days)
    if ctx.args.preview:
        state = "stopped" if plan.stopped else "not stopped (resume would change nothing)"
        ctx.print(f"account {safe(ctx.account)} is {state}; on resume now: {summary}")
        if plan.stopped and plan.mailings:
            ctx.out.print(resume_table(plan))
        return 0
    if not plan.stopped and plan.intent is not None:
        # Not stopped in the store, but held on this host by a stop intent whose writer died.
        ctx.print(_intent_line(plan.intent))
        confirm(ctx, f"Clear the stop intent and let account {safe(ctx.account)} send again?", ctx.args.yes)
        accounts.resume(store, ctx.actor, ctx.account, ctx.args.max_age_days)
        ctx.print(f"[bold green]RESUMED[/] account {safe(ctx.account)}: stop intent cleared")
        if notifier is not None:
            notifier.send(ops_options.operator_event(ctx, "resume", "stop intent cleared"))
        return 0
    if not plan.stopped:
        ctx.print(f"account {safe(ctx.account)} is not stopped; nothing to resume")
        return 0
    if plan.mailings:
        ctx.out.print(resume_table(plan))
    confirm(ctx, f"Resume account {safe(ctx.account)}: {summary}?", ctx.args.yes)
    done = accounts.resume(store, ctx.actor, ctx.account, ctx.args.max_age_days)
    if not done.stopped:
        raise Refused("the account was resumed by someone else meanwhile; nothing changed")
    ctx.print(f"[bold green]RESUMED[/] account {safe(ctx.account)}: {_resume_summary(done, ctx.args.max_age_days)}")
    if notifier is not None:
        notifier.send(ops_options.operator_event(ctx, "resume", None, counts={
            "to_send": done.to_send, "suspended": done.to_suspend, "held": done.held}))
    return 0


def run_audit(ctx: Context) -> int:
    rows = audit.entries(ctx.store(create=False), limit=ctx.args.limit, account=ctx.account)
    if ctx.args.json:
        ctx.print_json([r.__dict__ for r in rows])
        return 0
    t = Table("time", "actor", "ssh client", "action", "mailing", "details", title="audit log")
    for r in rows:
        details = ", ".join(f"{k}={v}" for k, v in sorted(r.details.items()) if v is not None)
        t.add_row(when(r.at), safe(r.actor), safe(r.ssh_client or "-"), safe(r.action),
                  str(r.mailing_id or "-"), safe(details))
    ctx.out.print(t)
    return 0
