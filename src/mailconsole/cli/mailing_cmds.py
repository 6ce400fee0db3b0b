"""Mailing commands: create, mailings, delete, pause, unpause, requeue, reschedule, template."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import templating
from ..store import Store, mailings, revisions
from ..store.errors import InvalidInput
from ..store.importer import check_sender, create_mailing
from .common import Context, UsageError, confirm, printable, record_id, safe, text_value, time_value, when
from .control_cmds import mailings_table
from .waiting import WaitReporter


def _mailing_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=record_id, metavar="ID", help="mailing id (see `mailconsole mailings`)")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("create", parents=[common], help="create a mailing from a recipients CSV")
    p.add_argument("--name", type=text_value)
    p.add_argument("--from", dest="sender", metavar="MAILBOX", type=text_value,
                   help="sender: name@domain or 'Display Name <name@domain>' (the name may be any language)")
    p.add_argument("--reply-to", metavar="MAILBOX", type=text_value, help="Reply-To: an address, with a display name or not")
    p.add_argument("--subject", type=text_value)
    p.add_argument("--subject-file", type=Path)
    p.add_argument("--body-file", type=Path)
    p.add_argument("--html-file", type=Path)
    p.add_argument("--recipients", type=Path, required=True, metavar="CSV",
                   help="CSV with a header row; 'email' required, other columns are merge fields")
    p.add_argument("--at", metavar="ISO8601", type=time_value, help="send time (in the future: the mailing is planned)")
    p.add_argument("--like", type=record_id, metavar="ID",
                   help="take name, sender, Reply-To, List-Unsubscribe and the newest template from mailing ID "
                        "(re-address a mailing)")
    p.add_argument("--list-unsubscribe", metavar="VALUE", type=text_value,
                   help="List-Unsubscribe header value: <mailto:…> and/or <https://…>, comma-separated; may use "
                        "merge fields ({{ email|urlencode }}); with https the one-click List-Unsubscribe-Post is added")
    p.add_argument("--list-id", metavar="LIST-ID", type=text_value,
                   help="List-Id header (RFC 2919), e.g. 'Shop news <news.shop.example.com>' (default: the account's, "
                        "see `mailconsole list-id`)")
    p.add_argument("--skip-invalid", action="store_true", help="skip bad or duplicate rows instead of refusing the file")
    p.set_defaults(handler=run_create)

    p = sub.add_parser("mailings", parents=[common], help="the Sent Analytics list")
    p.add_argument("--planned", action="store_true", help="show planned (future) mailings also")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_mailings)

    p = sub.add_parser("delete", parents=[common], help="delete a mailing: its unsent messages leave the queue")
    _mailing_id(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=run_delete)

    for name, helptext, fn in (
        ("pause", "pause one mailing (the account keeps sending others)", mailings.pause),
        ("unpause", "let a paused mailing send again", mailings.unpause),
    ):
        p = sub.add_parser(name, parents=[common], help=helptext)
        _mailing_id(p)
        p.set_defaults(handler=run_pause_action, action_fn=fn, action_name=name)

    p = sub.add_parser("requeue", parents=[common],
                       help="put a mailing's suspended (or, with --failed, failed) messages back in the queue")
    _mailing_id(p)
    p.add_argument("--failed", action="store_true",
                   help="requeue the failed messages instead (after correcting the template, or the relay)")
    p.set_defaults(handler=run_requeue)

    p = sub.add_parser("reschedule", parents=[common], help="move a planned mailing to another time")
    _mailing_id(p)
    p.add_argument("--at", required=True, metavar="ISO8601", type=time_value)
    p.set_defaults(handler=run_reschedule)

    p = sub.add_parser("template", parents=[common], help="show or correct a mailing's template")
    tsub = p.add_subparsers(dest="template_command", metavar="show|set", required=True)
    t = tsub.add_parser("show", parents=[common], help="the newest revision and per-revision sent counts")
    _mailing_id(t)
    t.set_defaults(handler=run_template_show)
    t = tsub.add_parser("set", parents=[common], help="save a corrected revision (validated first)")
    _mailing_id(t)
    t.add_argument("--subject", type=text_value)
    t.add_argument("--body-file", type=Path)
    t.add_argument("--html-file", type=Path)
    t.set_defaults(handler=run_template_set)


# A template longer than one rendered part may be can never be sent; reading stops
# past it, so `--body-file /dev/zero` is refused instead of filling the memory.
MAX_TEMPLATE_BYTES = 4 * templating.MAX_OUTPUT  # UTF-8: at most 4 bytes a character


def _read_text(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    if path.is_dir():
        raise InvalidInput(f"{what} {path} is a directory; give a file")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise InvalidInput(f"{what} {path} is larger than {MAX_TEMPLATE_BYTES:,} bytes; no template is that long")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} {path} is not UTF-8; save it as UTF-8 and retry") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it (universal newlines)


def run_create(ctx: Context) -> int:
    a = ctx.args
    store = ctx.store(create=False)
    name, sender, subject, body, html = a.name, a.sender, a.subject, None, None
    reply_to, list_unsubscribe, list_id = a.reply_to, a.list_unsubscribe, a.list_id
    if a.subject is not None and a.subject_file is not None:
        raise UsageError("give --subject or --subject-file, not both")
    if a.subject_file is not None:
        subject = (_read_text(a.subject_file, "subject file") or "").rstrip("\r\n")
    body = _read_text(a.body_file, "body file")
    html = _read_text(a.html_file, "HTML file")
    if a.like is not None:
        base = mailings.get_mailing(store, a.like, ctx.account)
        rev = revisions.newest_revision(store, a.like)
        name = name or base.name
        sender = sender or base.sender_display
        reply_to = reply_to or base.reply_to
        list_unsubscribe = list_unsubscribe or base.list_unsubscribe
        list_id = list_id or base.list_id
        if rev is not None:
            subject = subject if subject is not None else rev.subject
            body = body if body is not None else rev.text_body
            html = html if html is not None else rev.html_body
    if a.like is not None and a.sender is None and sender is not None:
        try:
            check_sender(sender)  # an older mailing may hold a sender accepted before it was checked
        except InvalidInput as exc:
            raise InvalidInput(f"{exc} (taken from mailing {a.like} by --like; give --from)") from None
    missing = [opt for opt, v in (("--name", name), ("--from", sender), ("--subject", subject), ("--body-file", body)) if v is None]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (or take them from a mailing with --like ID)")
    at = a.at  # parsed and checked by time_value
    interactive = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if interactive:
            print(f"\rpreparing: {done:,}/{total:,} recipients", end="", file=sys.stderr, flush=True)

    result = create_mailing(
        store, ctx.actor, name=name, sender=sender, subject=subject, text_body=body, html_body=html,
        recipients=a.recipients, at=at, account=ctx.account, skip_invalid=a.skip_invalid,
        list_unsubscribe=list_unsubscribe, reply_to=reply_to, list_id=list_id, progress=progress,
    )
    if interactive:
        print(file=sys.stderr)
    if result.skipped:
        print(f"skipped {result.skipped:,} invalid or duplicate row(s)", file=sys.stderr)
    if result.suppressed:
        print(f"skipped {result.suppressed:,} suppressed address(es) (see `mailconsole suppress list`)", file=sys.stderr)
    print(f"created mailing {result.mailing_id} ({result.status}, {result.recipients:,} recipients)", file=sys.stderr)
    print(result.mailing_id)  # stdout: just the id, for scripts
    return 0


def run_mailings(ctx: Context) -> int:
    rows = mailings.list_mailings(ctx.store(create=False), ctx.account, planned=ctx.args.planned)
    if ctx.args.json:
        ctx.print_json([m.as_dict() for m in rows])
    else:
        ctx.out.print(mailings_table(rows, ctx.out.width))
    return 0


def run_delete(ctx: Context) -> int:
    store = ctx.store(create=False)
    pre = mailings.delete_preview(store, ctx.args.id, ctx.account)
    confirm(
        ctx,
        f"Delete mailing {pre.mailing_id} '{safe(pre.name)}' ({pre.status})? {pre.dropped:,} unsent message(s) "
        f"will be dropped; {pre.sent:,} already sent stay sent.",
        ctx.args.yes,
    )
    report = WaitReporter()
    try:
        done = mailings.delete_mailing(store, ctx.actor, ctx.args.id, ctx.account, on_wait=report)
    except KeyboardInterrupt:
        report.say(f"interrupted: mailing {ctx.args.id} was NOT deleted")
        return 130
    if report.waited:
        report.say("the store is free again: delete applied")
    removed = mailings.purge_deleted(store)
    ctx.print(f"deleted mailing {done.mailing_id} '{safe(done.name)}': {done.dropped:,} dropped "
              f"({removed:,} removed from the queue now), {done.sent:,} had been sent")
    _say_relay(ctx, store, done.mailing_id, "removed from the relay")
    return 0


def _say_relay(ctx: Context, store: Store, mailing_id: int, what: str) -> None:
    """A mailing's messages still waiting at a relay: the relay agent acts on them too."""
    n = mailings.waiting_at_relay(store, mailing_id)
    if n:
        ctx.print(f"{n:,} of its messages wait at a relay: the relay agent has them {what} "
                  "(`mailconsole status` shows the relays)")


def run_pause_action(ctx: Context) -> int:
    if ctx.args.action_name != "pause":
        m = ctx.args.action_fn(ctx.store(create=False), ctx.actor, ctx.args.id, ctx.account)
        ctx.print(f"mailing {m.id} '{safe(m.name)}' is now {m.status}")
        return 0
    # A pause, like the stop, waits for a busy store instead of failing, and says why.
    report = WaitReporter()
    try:
        m = mailings.pause(ctx.store(create=False), ctx.actor, ctx.args.id, ctx.account, on_wait=report)
    except KeyboardInterrupt:
        report.say(f"interrupted: mailing {ctx.args.id} was NOT paused")
        return 130
    if report.waited:
        report.say("the store is free again: pause applied")
    ctx.print(f"mailing {m.id} '{safe(m.name)}' is now {m.status}")
    _say_relay(ctx, ctx.store(create=False), m.id, "held at the relay until it is resumed")
    return 0


def run_requeue(ctx: Context) -> int:
    store = ctx.store(create=False)
    if ctx.args.failed:
        n = mailings.requeue_failed(store, ctx.actor, ctx.args.id, ctx.account)
        ctx.print(f"requeued {n:,} failed message(s) of mailing {ctx.args.id}; they are sent with its newest revision")
        return 0
    n = mailings.requeue_suspended(store, ctx.actor, ctx.args.id, ctx.account)
    ctx.print(f"requeued {n:,} suspended message(s) of mailing {ctx.args.id}")
    return 0


def run_reschedule(ctx: Context) -> int:
    m = mailings.reschedule(ctx.store(create=False), ctx.actor, ctx.args.id, ctx.args.at, ctx.account)
    ctx.print(f"mailing {m.id} '{safe(m.name)}' now scheduled for {when(m.scheduled_at)} ({m.status})")
    return 0


def run_template_show(ctx: Context) -> int:
    store = ctx.store(create=False)
    m = mailings.get_mailing(store, ctx.args.id, ctx.account)
    revs = revisions.all_revisions(store, m.id)
    newest = revs[-1]
    ctx.print(f"mailing {m.id} '{safe(m.name)}' from {safe(m.sender_display)} — revision {newest.number} "
              f"saved {when(newest.created_at)} by {safe(newest.created_by)}")
    for label, value in (("reply-to", m.reply_to), ("list-id", m.list_id), ("list-unsubscribe", m.list_unsubscribe)):
        if value:
            ctx.print(f"{label}: {safe(value)}")
    ctx.print(f"merge fields: {', '.join(m.fields) or '(none)'}")
    ctx.print("sent per revision: " + " · ".join(f"revision {r.number}: {r.sent:,}" for r in revs))
    ctx.print(f"subject: {safe(newest.subject)}")
    ctx.print("--- body ---")
    ctx.out.print(printable(newest.text_body), markup=False, highlight=False, end="")
    if newest.html_body:
        ctx.print("\n--- html ---")
        ctx.out.print(printable(newest.html_body), markup=False, highlight=False, end="")
    ctx.print("")
    return 0


def run_template_set(ctx: Context) -> int:
    a = ctx.args
    if a.subject is None and a.body_file is None and a.html_file is None:
        raise UsageError("nothing to change: give --subject, --body-file and/or --html-file")
    store = ctx.store(create=False)
    rev = revisions.save_revision(
        store, ctx.actor, a.id, subject=a.subject, text_body=_read_text(a.body_file, "body file"),
        html_body=_read_text(a.html_file, "HTML file"), account=ctx.account,
    )
    ctx.print(f"mailing {a.id}: revision {rev.number} is now used for every message not yet sent")
    return 0
