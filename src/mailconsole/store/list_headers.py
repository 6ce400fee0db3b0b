"""List-Unsubscribe that may name the recipient, and List-Id: checked when a mailing is made.

A List-Unsubscribe may hold merge fields (`<https://shop.example/u?e={{ email|urlencode }}>`):
the engine renders it per message with the same sandboxed templating as the
subject and checks each result (a bad one fails that message alone). Here it
is checked as a template, and a rendering with placeholder values must be a
header the engine can send, so a mistake that would fail every message is
refused before anything is saved.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update

from .. import templating
from . import audit
from .accounts import account_id
from .actor import Actor
from .connection import Store
from .errors import InvalidInput
from .schema import accounts

MAX_TEMPLATE = 2000  # the source; what it renders to is bounded by importer.MAX_LIST_UNSUBSCRIBE
# RFC 2919: [phrase] "<" list-label "." list-id-namespace ">"; dot-atom-text, at most 255
# characters between the brackets. ASCII only: the phrase is written as it is.
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+"
_LIST_ID = re.compile(rf"(?P<phrase>[^<>]*?)\s*<(?P<id>{_DOT_ATOM})>|(?P<bare>{_DOT_ATOM})")
MAX_LIST_ID = 255
MAX_PHRASE = 200


def is_template(value: str) -> bool:
    """Whether a List-Unsubscribe holds template syntax (rendered per message)."""
    return "{{" in value or "{%" in value or "{#" in value


def check_list_unsubscribe(value: str, fields: list[str]) -> None:
    """Refuse (InvalidInput) a List-Unsubscribe the engine could not send to these recipients."""
    from .importer import list_unsubscribe_problem  # late: importer imports this module

    if not is_template(value):
        why = list_unsubscribe_problem(value)
        if why:
            raise InvalidInput(f"List-Unsubscribe {value!r} {why}")
        return
    if templating.has_line_break(value):
        raise InvalidInput("List-Unsubscribe contains a line break; it goes into a mail header and must be one line")
    if len(value) > MAX_TEMPLATE:
        raise InvalidInput(f"List-Unsubscribe is {len(value):,} characters; the limit is {MAX_TEMPLATE}")
    problems = templating.check(value, fields, "List-Unsubscribe")
    if problems:
        raise InvalidInput(f"List-Unsubscribe not usable: {problems[0]}")
    sample = {name: "x" for name in fields} | {"email": "someone@example.com"}
    try:
        rendered = templating.compile_text(value).render(sample)
    except Exception as exc:  # noqa: BLE001  an expression that fails: it would fail every message
        raise InvalidInput(f"List-Unsubscribe cannot be rendered: {exc.__class__.__name__}: {exc}") from None
    why = list_unsubscribe_problem(rendered)
    if why:
        raise InvalidInput(f"List-Unsubscribe {value!r}, rendered for a recipient as {rendered!r}, {why}")


def normal_list_id(value: str) -> str:
    """A List-Id as the engine writes it (`Name <id.domain>` or `<id.domain>`), else InvalidInput."""
    match = _LIST_ID.fullmatch(value.strip())
    if not value.isascii() or match is None:
        raise InvalidInput(
            f"List-Id {value!r} is not of the form 'Name <list.example.com>' (RFC 2919: ASCII, "
            "a dotted id in angle brackets)"
        )
    ident = match["id"] or match["bare"]
    phrase = (match["phrase"] or "").strip()
    if len(ident) > MAX_LIST_ID:
        raise InvalidInput(f"List-Id's id is {len(ident)} characters; RFC 2919 allows {MAX_LIST_ID}")
    if len(phrase) > MAX_PHRASE or not phrase.isprintable() or '"' in phrase:
        raise InvalidInput(f"List-Id's name {phrase!r} must be printable, without quotes, at most {MAX_PHRASE} characters")
    return f"{phrase} <{ident}>" if phrase else f"<{ident}>"


# -- the account's default List-Id ----------------------------------------------------


def account_list_id(store: Store, account: str = "default") -> str | None:
    """The List-Id of the account's mailings that name none themselves, or None."""
    with store.read() as conn:
        acc = account_id(conn, account)
        return conn.execute(select(accounts.c.list_id).where(accounts.c.id == acc)).scalar()


def set_account_list_id(store: Store, actor: Actor, value: str | None, account: str = "default") -> str | None:
    """Set (or, with None, clear) the account's default List-Id; audited. Returns it as stored."""
    normal = normal_list_id(value) if value is not None else None
    with store.write() as conn:
        acc = account_id(conn, account)
        previous = conn.execute(select(accounts.c.list_id).where(accounts.c.id == acc)).scalar()
        conn.execute(update(accounts).where(accounts.c.id == acc).values(list_id=normal))
        audit.record(conn, store.now(), actor, account, "list-id", None, previous=previous, list_id=normal)
    return normal
