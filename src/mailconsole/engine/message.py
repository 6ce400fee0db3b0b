"""Fast MIME: each revision's structure is built once, each message personalised cheaply.

`email.message.EmailMessage` costs about half a millisecond per message, more
than everything else the engine does for it. A revision's fixed parts (From,
MIME-Version, the multipart skeleton, List-Unsubscribe) are prepared once; per
message only the Jinja renders (subject, text, HTML), the header encoding of the
subject and the body's transfer encoding are done, all with C-backed helpers
(`binascii`, `base64`). The output parses back with the `email` package to the
same headers and bodies EmailMessage would produce (tests compare them).

A merge value that cannot go into a header (a line break in the subject, a
recipient address that is not plain ASCII), or a render over its budget
(templating.Budget: time, and characters across all parts), fails that one
message with a `MergeError`; the rest of the batch is unaffected.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from dataclasses import dataclass
from email.utils import formatdate

from .. import message_ids, templating
from . import headers
from .dkim_signing import DkimSigner
from .list_headers import BadListHeader, ListHeaders

# Longest line RFC 5322 allows (without CRLF); longer body lines are QP-encoded.
MAX_LINE = 998
# Bytes of UTF-8 per RFC 2047 encoded word: base64 of 45 bytes is 60 characters,
# so "=?utf-8?b?…?=" stays within the 75-character limit.
WORD_BYTES = 45


class MergeError(ValueError):
    """This recipient's message cannot be built; the reason is safe to show.

    kind is what the store records as the message's fail_kind: "template" (the
    template failed or went over its render budget for this recipient: fixable by
    a corrected revision, then `requeue --failed`) or "address".
    """

    def __init__(self, reason: str, kind: str = "template") -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True)
class RevisionData:
    """What the store holds for the newest revision of a mailing."""

    id: int
    subject: str
    text: str
    html: str | None
    sender: str
    list_unsubscribe: str | None
    sender_name: str = ""
    reply_to: str | None = None
    store_id: str = ""  # makes Message-IDs unique across stores (store/identity.py)
    list_id: str | None = None  # the mailing's, else its account's


@dataclass(frozen=True)
class Built:
    envelope_from: str
    recipient: str
    data: bytes  # headers + body, CRLF line ends, ending with CRLF, not dot-stuffed


def encode_header(value: str) -> str:
    """A header value as-is when plain ASCII, else as RFC 2047 base64 encoded words."""
    if value.isascii() and "=?" not in value and len(value) < 900 and value.isprintable():
        return value
    words = []
    chunk = bytearray()
    for ch in value:
        b = ch.encode("utf-8")
        if len(chunk) + len(b) > WORD_BYTES:
            words.append(chunk)
            chunk = bytearray()
        chunk += b
    if chunk or not words:
        words.append(chunk)
    return "\r\n ".join("=?utf-8?b?" + base64.b64encode(bytes(w)).decode("ascii") + "?=" for w in words)


_LINE_BREAK = re.compile("[" + "".join(sorted(templating.LINE_BREAKS)) + "]")


def _has_long_line(data: bytes) -> bool:
    """Whether a line is over MAX_LINE bytes: jumps to the last line break within reach
    (a C search per ~1 KB, 0.4 µs for a 2 KB body, against 2.5 µs for split())."""
    p = 0
    while len(data) - p > MAX_LINE:
        nl = data.rfind(b"\n", p, p + MAX_LINE + 1)
        if nl < 0:
            return True
        p = nl + 1
    return False


def encode_body(text: str, boundary: str | None = None) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body bytes with CRLF line ends, ending with CRLF).

    Works on the UTF-8 bytes: bytes.replace and isascii run in C over the ~2 KB
    body, about a third of the cost of doing the same on the str.
    """
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    if not data.isascii() or _has_long_line(data) or (boundary is not None and boundary.encode("ascii") in data):
        # Quoted-printable escapes "=", so a boundary (which contains "=") never
        # appears in a QP part.
        return "quoted-printable", binascii.b2a_qp(data).replace(b"\n", b"\r\n")
    return "7bit", data.replace(b"\n", b"\r\n")


_date_cache: tuple[int, str] = (0, "")


def _date(now: float) -> str:
    global _date_cache
    second = int(now)
    if _date_cache[0] != second:
        _date_cache = (second, formatdate(second, usegmt=True))
    return _date_cache[1]


# A revision that went over its time budget for this many messages renders the rest
# with a 25th of it (10 ms). A template slow for every recipient would otherwise hold the
# engine's loop for 250 ms per message, for each of its sender tasks in turn
# (eight of them: two seconds between two heartbeats); a normal message takes
# about 13 µs, so even that is still some 700 times as long.
STRIKES = 3
REDUCED_SECONDS = templating.RENDER_SECONDS / 25
# ... and once this many of its messages in a row went over it, the rest fail at once,
# unrendered: even the reduced budget, for every message, is most of the engine's
# time (its heartbeat then lags by seconds). The fix is a corrected revision (a new
# CompiledRevision starts afresh) and `requeue --failed`.
GIVE_UP = 20


class CompiledRevision:
    """A revision's templates and fixed headers, ready to personalise."""

    def __init__(self, mailing_id: int, rev: RevisionData, *, domain: str | None = None,
                 signer: DkimSigner | None = None) -> None:
        self.mailing_id = mailing_id
        self.revision_id = rev.id
        name, address = headers.sender_mailbox(rev.sender, rev.sender_name)
        self.envelope_from = address  # MAIL FROM: the bare address
        self._lists = ListHeaders(rev.list_unsubscribe, rev.list_id)
        # A revision saved by an older release may be one that today's checks refuse:
        # too big to compile quickly (on the engine's loop), or not compiling at all.
        # Its messages then fail one by one, with the reason, instead of the engine.
        self._broken: str | None = None
        self._parts: list = []
        too_big = next(filter(None, (templating.size_problem(src, part) for part, src in
                                     (("subject", rev.subject), ("body", rev.text), ("html", rev.html or "")))), None)
        if too_big is not None:
            self._broken = f"template cannot be used: {too_big}; correct it, then requeue the failed messages"
        else:
            try:
                self._parts = templating.compile_parts(rev.subject, rev.text, rev.html)
                unsubscribe = self._lists.template_source
                # A personal List-Unsubscribe is one more part, under the same budget.
                self._parts.append(("list-unsubscribe",
                                    templating.Renderer(templating.compile_text(unsubscribe)) if unsubscribe else None))
            except Exception as exc:  # syntax error, unknown filter, nesting too deep
                self._broken = f"template cannot be compiled: {templating.describe(exc)}"
        self.over_time = 0  # messages of this revision that went over the time budget
        self.streak = 0  # ... in a row (a render within the budget resets it)
        self._domain = domain or message_ids.domain_of(self.envelope_from)
        # Built once per revision; the recipients export builds the same (message_ids.py).
        self._id_tail = message_ids.tail(mailing_id, rev.store_id, self._domain)
        self._fixed_head = headers.mailbox_header("From", name, address)
        if rev.reply_to:
            self._fixed_head += headers.reply_to_header(rev.reply_to)
        self._fixed_tail = "MIME-Version: 1.0\r\n"
        self._boundary = "===============" + binascii.hexlify(os.urandom(10)).decode("ascii") + "=="
        self._signer = signer

    def build(self, message_id: int, email: str, fields: str | dict, now: float | None = None) -> Built:
        """The complete message for one recipient, or MergeError."""
        if _LINE_BREAK.search(email) or not email.isascii() or "<" in email or ">" in email:
            raise MergeError(f"recipient address {email!r} cannot be used in a header (non-ASCII or line break)", "address")
        values = json.loads(fields) if isinstance(fields, str) else dict(fields)
        values["email"] = email
        if self._broken is not None:
            raise MergeError(self._broken)
        if self.streak >= GIVE_UP:
            raise MergeError(
                f"template over its render budget: not rendered, this revision went over it for {GIVE_UP} messages "
                "in a row; correct the template, then requeue the failed messages"
            )
        reduced = self.over_time >= STRIKES
        try:
            subject, text, html, unsubscribe = templating.render_parts(
                self._parts, values, REDUCED_SECONDS if reduced else templating.RENDER_SECONDS
            )
            lists = self._lists.lines(unsubscribe)
        except BadListHeader as exc:
            raise MergeError(f"{exc}; not sent to {email}") from None
        except templating.PartFailed as exc:
            if isinstance(exc.error, templating.OverBudget):
                why = templating.describe(exc.error)
                if exc.error.timed_out:
                    self.over_time += 1
                    self.streak += 1
                    if reduced:
                        why += f" (reduced: this revision went over {templating.RENDER_SECONDS * 1000:.0f} ms for {STRIKES} messages)"
                raise MergeError(f"{why} ({exc.part}, for {email}); not sent") from None
            raise MergeError(f"template cannot be rendered for {email}: {templating.describe(exc.error)}") from None
        assert subject is not None and text is not None
        self.streak = 0
        if _LINE_BREAK.search(subject):
            raise MergeError(f"subject for {email} would contain a line break (from a merge value); not sent")
        head = (
            self._fixed_head
            + "To: " + email + "\r\n"
            + "Subject: " + encode_header(subject) + "\r\n"
            + "Date: " + _date(time.time() if now is None else now) + "\r\n"
            + "Message-ID: " + message_ids.with_tail(message_id, self._id_tail) + "\r\n"
            + self._fixed_tail
            + lists
        )
        if html is None:
            cte, body = encode_body(text)
            head += f'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
            return self._built(email, head.encode("ascii") + body)
        b = self._boundary
        text_cte, text_body = encode_body(text, b)
        html_cte, html_body = encode_body(html, b)
        head += f'Content-Type: multipart/alternative; boundary="{b}"\r\n\r\n'
        data = b"".join((
            head.encode("ascii"),
            f'--{b}\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {text_cte}\r\n\r\n'.encode("ascii"),
            text_body,
            # The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1),
            # so each part's own final line break is followed by one more.
            f'\r\n--{b}\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: {html_cte}\r\n\r\n'.encode("ascii"),
            html_body,
            f"\r\n--{b}--\r\n".encode("ascii"),
        ))
        return self._built(email, data)

    def _built(self, email: str, data: bytes) -> Built:
        return Built(self.envelope_from, email, data if self._signer is None else self._signer.sign(data))
