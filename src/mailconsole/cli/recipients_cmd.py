"""`mailconsole recipients`: who was sent a revision (or is still to get the mailing), as CSV.

The rows come from store/recipients.py, streamed: a million recipients go to
stdout or a file without being held in memory.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from typing import TextIO

from ..store import recipients
from .common import Context, UsageError, one_line, positive_int, record_id

# What a Message-ID domain may be (the right of its "@"): letters, digits, dots,
# hyphens, or an IDNA name written in Unicode; never a space, "<", ">" or "@".
_DOMAIN = re.compile(r"[^\s<>@\[\]\\\"(),;:]+")

STATE_HELP = (
    "sent (default): messages that went out; queued: waiting to be sent; suspended: held by the 7-day rule; "
    "failed: given up (with the error)"
)
REVISION_HELP = (
    "the revision number (see `mailconsole template show ID`): with --state sent, only the messages sent with it. "
    "Queued and suspended messages are not sent yet and go out with the newest revision, so only the newest is "
    "accepted with them; failed messages record none, so it is refused with --state failed "
    "(default: every revision)"
)


def _domain(value: str) -> str:
    if not _DOMAIN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{one_line(value)!r} is not a domain (e.g. mail.shop.example)")
    return value


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "recipients", parents=[common],
        help="export a mailing's recipients (who was sent revision N) as CSV: address, merge fields, sent time, "
             "revision, Message-ID",
        description="Export a mailing's recipients as CSV: email, the merge fields in their declared order, sent_at "
                    "(ISO 8601, UTC), revision, message_id, state (and error with --state failed). A value that "
                    "starts with = + - @, a tab or CR gets a leading ' so a spreadsheet does not run it as a formula.",
    )
    p.add_argument("id", type=record_id, metavar="ID", help="mailing id (see `mailconsole mailings`)")
    p.add_argument("--revision", type=positive_int, metavar="N", help=REVISION_HELP)
    p.add_argument("--state", choices=recipients.STATES, default="sent", help=STATE_HELP)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="FILE",
                     help="write the CSV to FILE (whole or not at all: written beside it, then renamed) and a one-line "
                          "summary to stderr (default: the CSV to stdout)")
    out.add_argument("--json", action="store_true",
                     help="a JSON list of the recipients to stdout instead (values as stored, not made inert)")
    p.add_argument("--message-domain", type=_domain, metavar="DOMAIN",
                   help="the domain in the Message-IDs: give the engine's message_domain if its configuration sets "
                        "one (default: the sender's domain, as the engine's default)")
    p.set_defaults(handler=run)


def run(ctx: Context) -> int:
    a = ctx.args
    if a.csv is not None and not a.csv.strip():
        raise UsageError("--csv needs a file name")
    store = ctx.store(create=False)
    if a.csv is not None:
        n = recipients.write_csv(store, a.id, a.csv, revision=a.revision, state=a.state, account=ctx.account,
                                 message_domain=a.message_domain)
        print(f"wrote {_what(n, a.id, a.state, a.revision)} to {one_line(a.csv)}", file=sys.stderr, flush=True)
        return 0
    # Checked before the first byte goes out: a refusal leaves stdout empty.
    sel = recipients.select_recipients(store, a.id, revision=a.revision, state=a.state, account=ctx.account,
                                       message_domain=a.message_domain)
    if a.json:
        _json_list(recipients.rows(store, sel), sys.stdout)
    else:
        recipients.write_rows(store, sel, sys.stdout)
    return 0


def _what(n: int, mailing_id: int, state: str, revision: int | None) -> str:
    """"12,345 recipients of mailing 7 revision 1" (the state named unless it is sent)."""
    who = "recipient" if n == 1 else "recipients"
    kind = "" if state == "sent" else f"{state} "
    rev = f" revision {revision}" if revision is not None else ""
    return f"{n:,} {kind}{who} of mailing {mailing_id}{rev}"


def _json_list(rows: Iterator[recipients.Recipient], out: TextIO) -> None:
    """A JSON list written item by item: as `mailings --json`, but never whole in memory."""
    out.write("[")
    first = True
    for r in rows:
        out.write("\n  " if first else ",\n  ")
        out.write(json.dumps(r.as_dict(), sort_keys=True))
        first = False
    out.write("\n]\n" if not first else "]\n")
