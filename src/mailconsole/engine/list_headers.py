"""The list headers of one revision: List-Id, List-Unsubscribe, List-Unsubscribe-Post.

List-Unsubscribe may be rendered per recipient (a personal unsubscribe URL);
each result is checked as the importer checks a fixed one, and a bad one fails
that message alone (BadListHeader). With an https URI the engine adds
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which the big
mailbox providers require of bulk senders.
"""

from __future__ import annotations

from ..store.importer import list_unsubscribe_problem
from ..store.list_headers import is_template

ONE_CLICK = "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"


class BadListHeader(ValueError):
    """The List-Unsubscribe rendered for this recipient cannot be sent."""


def _unsubscribe_lines(value: str) -> str:
    value = value.strip()
    one_click = any(uri.lower().startswith("<https:") for uri in (u.strip() for u in value.split(",")))
    return "List-Unsubscribe: " + value + "\r\n" + (ONE_CLICK if one_click else "")


class ListHeaders:
    """Built once per revision; `lines(rendered)` per message.

    A List-Unsubscribe with merge fields is rendered with the message's other
    parts, under the same render budget (`template_source` is what to render).
    """

    def __init__(self, list_unsubscribe: str | None, list_id: str | None) -> None:
        self._fixed = f"List-Id: {list_id}\r\n" if list_id else ""
        self.template_source: str | None = None
        if list_unsubscribe and is_template(list_unsubscribe):
            self.template_source = list_unsubscribe
        elif list_unsubscribe:
            self._fixed += _unsubscribe_lines(list_unsubscribe)

    def lines(self, rendered: str | None) -> str:
        """The header lines, CRLF-terminated ("" for none); BadListHeader if this rendering cannot be sent."""
        if self.template_source is None or rendered is None:
            return self._fixed
        rendered = rendered.strip()
        why = list_unsubscribe_problem(rendered)
        if why:
            raise BadListHeader(f"List-Unsubscribe rendered as {rendered[:200]!r} {why}")
        return self._fixed + _unsubscribe_lines(rendered)
